/// Works around assertions in the toml++ parser that TOMLKit 0.6.0 bundles,
/// which abort the process on some malformed files instead of failing with a
/// syntax error: a crash at start, or at a SIGHUP reload of a half-edited
/// file. Found by Tests/Fuzz (fuzz-config):
/// - a table header whose first non-blank character after the bracket is not
///   a key character, a quote or `]` (`[` alone on a line, `[.a]`, `[é]`);
/// - `}` where an array value should be (`x = [1, }]`).
///
/// This finds those constructs before toml++ sees the text, so the loader can
/// report them as the syntax errors they are. It follows strings, comments and
/// array values only as far as needed to tell a header line from a line
/// inside a value (a nested array may well start a line with `[`).
enum TOMLParserGuard {
    private enum StringKind { case basic, literal, multiLineBasic, multiLineLiteral }

    /// The first construct toml++ would abort on: its 1-based line and what is wrong.
    static func firstCrashingConstruct(in source: String) -> (line: Int, problem: String)? {
        let bytes = Array(source.utf8)
        let newline = UInt8(ascii: "\n"), quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'")
        func tripled(_ byte: UInt8, at index: Int) -> Bool {
            index + 2 < bytes.count && bytes[index + 1] == byte && bytes[index + 2] == byte
        }
        var line = 1
        var atLineStart = true // only blanks so far on this line
        var arrayDepth = 0
        var awaitingArrayValue = false // after `[` or `,` in an array, until the next token
        var string: StringKind?
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == newline { line += 1 }
            if let kind = string {
                switch kind {
                case .basic, .literal:
                    if byte == (kind == .basic ? quote : apostrophe) || byte == newline { string = nil }
                    if kind == .basic, byte == UInt8(ascii: "\\") { index += 1 } // skips the escaped byte (never a line break here)
                case .multiLineBasic, .multiLineLiteral:
                    let closer = kind == .multiLineBasic ? quote : apostrophe
                    if byte == closer, tripled(closer, at: index) {
                        string = nil
                        index += 2
                    } else if kind == .multiLineBasic, byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                        index += 1
                        if bytes[index] == newline { line += 1 }
                    }
                }
                if byte == newline { atLineStart = true }
                index += 1
                continue
            }
            switch byte {
            case newline:
                atLineStart = true
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                break
            case UInt8(ascii: "#"):
                while index + 1 < bytes.count, bytes[index + 1] != newline { index += 1 }
            case quote, apostrophe:
                awaitingArrayValue = false
                let multiLine = tripled(byte, at: index)
                string = byte == quote ? (multiLine ? .multiLineBasic : .basic) : (multiLine ? .multiLineLiteral : .literal)
                if multiLine { index += 2 }
                atLineStart = false
            case UInt8(ascii: "[") where atLineStart && arrayDepth == 0:
                // A table header, `[name]` or `[[name]]`.
                var next = index + 1
                if next < bytes.count, bytes[next] == UInt8(ascii: "[") { next += 1 }
                while next < bytes.count, bytes[next] == UInt8(ascii: " ") || bytes[next] == UInt8(ascii: "\t") { next += 1 }
                if next < bytes.count, !startsHeaderName(bytes[next]) { return (line, "a table header must start with a name") }
                // The rest of the header line holds no value, so no array to follow.
                while index + 1 < bytes.count, bytes[index + 1] != newline { index += 1 }
                atLineStart = false
            case UInt8(ascii: "["):
                arrayDepth += 1
                awaitingArrayValue = true
                atLineStart = false
            case UInt8(ascii: ",") where arrayDepth > 0:
                awaitingArrayValue = true
                atLineStart = false
            case UInt8(ascii: "}") where awaitingArrayValue:
                return (line, "\"}\" where an array value should be")
            case UInt8(ascii: "]"):
                arrayDepth = max(0, arrayDepth - 1)
                awaitingArrayValue = false
                atLineStart = false
            case 0x80...0xFF, 0x00..<0x20:
                // A byte order mark, Unicode whitespace or a control character:
                // toml++ may skip it where a line starts, so it does not end the
                // line's start here (no valid line begins with one).
                break
            default:
                awaitingArrayValue = false
                atLineStart = false
            }
            index += 1
        }
        return nil
    }

    /// What toml++ expects first in a header: a bare-key character, a quote, or
    /// the closing bracket (which it reports as an empty name itself).
    private static func startsHeaderName(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "]"):
            true
        default:
            false
        }
    }
}
