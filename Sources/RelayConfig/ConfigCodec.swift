import Logging
import RelayPolicy

/// How one kind of value is read from its key and written back as TOML. A
/// key absent from the file keeps the value it has (its default).
struct ConfigCodec<Value>: Sendable {
    typealias Read = @Sendable (_ section: inout Section, _ key: String, _ current: Value) throws(ConfigError) -> Value

    let read: Read
    let write: @Sendable (Value) -> String
}

extension ConfigCodec where Value == Bool {
    static var bool: Self {
        Self(read: { (section: inout Section, key: String, current: Bool) throws(ConfigError) in
            try section.bool(key, default: current)
        }, write: { "\($0)" })
    }
}

extension ConfigCodec where Value == Int {
    static func int(_ range: ClosedRange<Int>) -> Self {
        Self(read: { (section: inout Section, key: String, current: Int) throws(ConfigError) in
            try section.int(key, default: current, range: range)
        }, write: { "\($0)" })
    }

    /// `"30m"`, `"7d"`: seconds.
    static func duration(_ range: ClosedRange<Int>) -> Self {
        Self(read: { (section: inout Section, key: String, current: Int) throws(ConfigError) in
            try section.duration(key, default: current, range: range)
        }, write: { TOMLText.quoted(DurationText.text($0)) })
    }
}

extension ConfigCodec where Value == Int32 {
    static func int(_ range: ClosedRange<Int>) -> Self {
        Self(read: { (section: inout Section, key: String, current: Int32) throws(ConfigError) in
            Int32(try section.int(key, default: Int(current), range: range))
        }, write: { "\($0)" })
    }
}

extension ConfigCodec where Value == String {
    static var string: Self { string { _ in nil } }

    /// A string that `problem` accepts (it says what is wrong otherwise).
    static func string(_ problem: @escaping @Sendable (String) -> String?) -> Self {
        Self(read: { (section: inout Section, key: String, current: String) throws(ConfigError) in
            let text = try section.string(key, default: current)
            if let message = problem(text) { throw section.error(key, message) }
            return text
        }, write: TOMLText.quoted)
    }

    /// Empty means "the default": the value stays what it was.
    static var stringOrDefault: Self {
        Self(read: { (section: inout Section, key: String, current: String) throws(ConfigError) in
            try section.optionalString(key) ?? current
        }, write: TOMLText.quoted)
    }

    static var headerName: Self {
        Self(read: { (section: inout Section, key: String, current: String) throws(ConfigError) in
            try section.headerName(key, default: current)
        }, write: TOMLText.quoted)
    }
}

extension ConfigCodec where Value == String? {
    /// Empty means none.
    static var optionalString: Self { optionalString { _ in nil } }

    static func optionalString(_ problem: @escaping @Sendable (String) -> String?) -> Self {
        Self(read: { (section: inout Section, key: String, current: String?) throws(ConfigError) in
            guard section.has(key) else { return current }
            let text = try section.optionalString(key)
            if let text, let message = problem(text) { throw section.error(key, message) }
            return text
        }, write: { TOMLText.quoted($0 ?? "") })
    }

    static var optionalAbsolutePath: Self {
        optionalString { $0.hasPrefix("/") ? nil : "expected an absolute path, got \"\($0)\"" }
    }
}

extension ConfigCodec where Value: RawRepresentable & SendableMetatype, Value.RawValue == String {
    /// One of `allowed`, by its spelling; a long list is named as "one of a, b, c".
    static func choice(_ allowed: [Value]) -> Self {
        let names = allowed.map(\.rawValue)
        let expected = names.count > 3 ? "one of " + names.joined(separator: ", ")
            : names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
        return Self(read: { (section: inout Section, key: String, current: Value) throws(ConfigError) in
            let text = try section.string(key, default: current.rawValue)
            guard let value = Value(rawValue: text), names.contains(text) else {
                throw section.error(key, "expected \(expected), got \"\(text)\"")
            }
            return value
        }, write: { TOMLText.quoted($0.rawValue) })
    }
}

extension ConfigCodec where Value == PolicyAction {
    /// What to do with refused mail (accepting is what the mode is for).
    static var refusal: Self { choice([.reject, .tempfail, .tag]) }
}

/// An array of strings, each converted by `parse`; written back by `spell`,
/// in the order `spell` gives them (sorted for sets).
func listCodec<Element: SendableMetatype>(_ parse: @escaping @Sendable (String) throws(BadValue) -> Element,
                        _ spell: @escaping @Sendable (Element) -> String) -> ConfigCodec<[Element]> {
    ConfigCodec(read: { (section: inout Section, key: String, current: [Element]) throws(ConfigError) in
        guard section.has(key) else { return current }
        return try section.list(key, parse)
    }, write: { TOMLText.list($0.map(spell)) })
}

func setCodec<Element: Hashable & SendableMetatype>(_ parse: @escaping @Sendable (String) throws(BadValue) -> Element,
                                 _ spell: @escaping @Sendable (Element) -> String) -> ConfigCodec<Set<Element>> {
    ConfigCodec(read: { (section: inout Section, key: String, current: Set<Element>) throws(ConfigError) in
        guard section.has(key) else { return current }
        return Set(try section.list(key, parse))
    }, write: { TOMLText.list($0.map(spell).sorted()) })
}
