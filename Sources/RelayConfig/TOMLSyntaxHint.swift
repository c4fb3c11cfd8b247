/// The words an admin needs for the TOML parser's errors that describe the
/// symptom rather than the mistake: a string left open on its line is
/// reported as a control character (the line break) inside a string.
enum TOMLSyntaxHint {
    private static let hints: [(symptom: String, hint: String)] = [
        ("control characters other than TAB", "a quoted string is not closed on its line (a missing closing quote?)"),
        ("could not determine value type", "a value that is no number, true or false needs quotes (mode = \"enforce\")"),
        ("parsing array: encountered end-of-file", "a list is not closed (a missing ']'?)"),
    ]

    /// The parser's own description, led by the likely mistake where one is known.
    static func explain(_ description: String) -> String {
        guard let hint = hints.first(where: { description.contains($0.symptom) })?.hint else { return description }
        return "\(hint); the parser says: \(description)"
    }
}
