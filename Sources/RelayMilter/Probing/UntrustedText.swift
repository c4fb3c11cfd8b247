/// Text relay-milter did not write and prints to the admin: a remote
/// server's banner and replies, stored verdicts (the fleet's shared table has
/// other writers). Printed raw, an escape sequence in a banner would drive the
/// admin's terminal, and a cell starting with `=` is a formula to a
/// spreadsheet opening the CSV export.
enum UntrustedText {
    /// Control characters (C0, DEL, C1) and the Unicode controls that reorder
    /// or hide what is shown (bidirectional overrides, zero-width marks)
    /// become visible escapes such as `\x1b` and `\u{202e}`.
    static func forTerminal(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else { out.unicodeScalars.append(scalar); continue }
            out += scalar.value < 0x100 ? "\\x" + hex(scalar.value, digits: 2) : "\\u{" + hex(scalar.value, digits: 4) + "}"
        }
        return out
    }

    /// A CSV cell's text: as for a terminal, and one that a spreadsheet would
    /// take for a formula is prefixed with `'` (quoting is the CSV writer's job).
    static func forCSV(_ text: String) -> String {
        let safe = forTerminal(text)
        guard let first = safe.unicodeScalars.first, "=+-@".unicodeScalars.contains(first) else { return safe }
        return "'" + safe
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F..<0xA0: true
        // Zero-width and bidirectional marks, overrides and isolates; the BOM.
        case 0x200B...0x200F, 0x202A...0x202E, 0x2066...0x2069, 0xFEFF: true
        default: false
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
