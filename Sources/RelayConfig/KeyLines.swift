/// Where each `table.key` is written in a TOML file, so that errors found after
/// parsing (unknown keys, bad values) can name a line. TOMLKit reports positions
/// only for syntax errors; this scan covers the plain layout our config uses:
/// `[table]` headers and `key = value` lines (a multi-line array is reported at
/// its key's line).
struct KeyLines {
    private var lines: [String: Int] = [:]

    init(source: String) {
        var table = ""
        var inMultilineString = false
        for (index, rawLine) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.contains("\"\"\"") || line.contains("'''") { inMultilineString.toggle() }
            if inMultilineString { continue }
            if line.hasPrefix("[") {
                let name = line.dropFirst().prefix { $0 != "]" }.filter { $0 != "[" && $0 != " " && $0 != "\"" }
                table = String(name)
                lines[table] = lines[table] ?? index + 1
                continue
            }
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            let key = line[..<equals].trimmingCharacters { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "'" }
            guard !key.isEmpty else { continue }
            let path = table.isEmpty ? key : table + "." + key
            lines[path] = lines[path] ?? index + 1
        }
    }

    func line(of path: String) -> Int? { lines[path] }
}

extension Substring {
    func trimmingCharacters(_ drop: (Character) -> Bool) -> String {
        String(self.drop(while: drop).reversed().drop(while: drop).reversed())
    }
}
