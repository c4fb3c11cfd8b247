/// Fills `{name}` placeholders in a configured reply text in one pass.
///
/// One pass matters beyond speed: values come from the SMTP client (a
/// recipient address), and a value is never searched again, so a recipient
/// written as `<{reason}@example.org>` stays literal instead of being expanded.
/// Unknown placeholders are left as written.
enum Placeholders {
    static func fill(_ template: String, _ value: (Substring) -> String?) -> String {
        guard template.utf8.contains(UInt8(ascii: "{")) else { return template }
        var result = ""
        result.reserveCapacity(template.utf8.count + 32)
        var rest = Substring(template)
        while let open = rest.utf8.firstIndex(of: UInt8(ascii: "{")) {
            result += rest[..<open]
            let afterOpen = rest.utf8.index(after: open)
            guard let close = rest[afterOpen...].utf8.firstIndex(of: UInt8(ascii: "}")) else {
                rest = rest[open...]
                break
            }
            let name = rest[afterOpen..<close]
            if let replacement = value(name) {
                result += replacement
            } else {
                result += rest[open...close]
            }
            rest = rest[rest.utf8.index(after: close)...]
        }
        result += rest
        return result
    }
}
