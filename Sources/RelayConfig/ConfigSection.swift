import RelayPolicy

/// Why one value in a list is unacceptable; `Section.list` adds the key and line.
struct BadValue: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// One TOML table being read: typed getters that remember which keys were
/// asked about, so `finish()` can name every key nobody expects.
struct Section {
    /// The file being read, for errors.
    let file: String
    let path: String
    let table: TOMLTable
    /// Every key some getter asked about, present or not.
    private var known: Set<String> = []

    init(file: String, path: String, table: TOMLTable) {
        self.file = file
        self.path = path
        self.table = table
    }

    func qualified(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: table.line(of: key) ?? table.line, message: "\(qualified(key)): \(message)")
    }

    mutating func has(_ key: String) -> Bool {
        known.insert(key)
        return table[key] != nil
    }

    mutating func section(_ key: String) throws(ConfigError) -> Section? {
        known.insert(key)
        guard let value = table[key] else { return nil }
        guard let inner = value.table else { throw error(key, "expected a table [\(qualified(key))]") }
        return Section(file: file, path: qualified(key), table: inner)
    }

    mutating func string(_ key: String, default fallback: String) throws(ConfigError) -> String {
        known.insert(key)
        guard let value = table[key] else { return fallback }
        guard let text = value.string else { throw error(key, "expected a string, got \(value.typeName)") }
        return text
    }

    mutating func optionalString(_ key: String) throws(ConfigError) -> String? {
        let text = try string(key, default: "")
        return text.isEmpty ? nil : text
    }

    mutating func bool(_ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
        known.insert(key)
        guard let value = table[key] else { return fallback }
        guard let flag = value.boolean else { throw error(key, "expected true or false, got \(value.typeName)") }
        return flag
    }

    /// A header field name for tagging.
    mutating func headerName(_ key: String, default fallback: String) throws(ConfigError) -> String {
        let header = try string(key, default: fallback)
        guard ConfigLoader.isHeaderName(header) else {
            throw error(key, "expected a header name (printable ASCII, no spaces or colons), got \"\(header)\"")
        }
        return header
    }

    /// A duration (`"30m"`, `"7d"`) in seconds, within `range`.
    mutating func duration(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string(key, default: DurationText.text(fallback))
        let seconds: Int
        do { seconds = try DurationText.seconds(text) } catch { throw self.error(key, error.description) }
        guard range.contains(seconds) else {
            throw error(key, "expected a duration from \(DurationText.text(range.lowerBound)) to \(DurationText.text(range.upperBound)), got \"\(text)\"")
        }
        return seconds
    }

    mutating func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        known.insert(key)
        guard let value = table[key] else { return fallback }
        guard let number = value.integer else { throw error(key, "expected an integer, got \(value.typeName)") }
        guard range.contains(number) else {
            throw error(key, "expected an integer from \(range.lowerBound) to \(range.upperBound), got \(number)")
        }
        return number
    }

    /// An array of strings, each converted by `parse` (which throws a message).
    mutating func list<T>(_ key: String, _ parse: (String) throws(BadValue) -> T) throws(ConfigError) -> [T] {
        known.insert(key)
        guard let value = table[key] else { return [] }
        guard let array = value.array else { throw error(key, "expected an array of strings, got \(value.typeName)") }
        var result: [T] = []
        for element in array {
            guard let text = element.string else { throw error(key, "expected an array of strings, found \(element.typeName)") }
            do {
                result.append(try parse(text))
            } catch {
                throw self.error(key, error.message)
            }
        }
        return result
    }

    /// A key (or sub-table) read elsewhere, so that `finish()` does not call it unknown.
    mutating func expect(_ key: String) {
        known.insert(key)
    }

    func finish() throws(ConfigError) {
        let expected = known.sorted().joined(separator: ", ")
        for key in table.keys where !known.contains(key) {
            let message = "unknown key; expected one of: \(expected)"
            throw error(key, message)
        }
    }
}
