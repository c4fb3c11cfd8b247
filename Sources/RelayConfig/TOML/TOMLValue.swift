/// A parsed TOML 1.0 document: values and tables as plain Swift values, each
/// key with the line it was written on, so that errors found after parsing
/// (an unknown key, a bad value) can name the line.
enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    /// An offset or local date-time, date or time, as written (no relay-milter
    /// key takes one; kept so that a value of the wrong type is reported as such).
    case dateTime(String)
    case array([TOMLValue])
    case table(TOMLTable)

    /// The type, as a config error names it ("expected an integer, got string").
    var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .boolean: "boolean"
        case .dateTime: "date-time"
        case .array: "array"
        case .table: "table"
        }
    }

    var string: String? { if case .string(let text) = self { text } else { nil } }
    var integer: Int? { if case .integer(let number) = self { number } else { nil } }
    var boolean: Bool? { if case .boolean(let flag) = self { flag } else { nil } }
    var array: [TOMLValue]? { if case .array(let items) = self { items } else { nil } }
    var table: TOMLTable? { if case .table(let table) = self { table } else { nil } }
}

/// A TOML table: its keys in the order written, and the line of each.
struct TOMLTable: Equatable, Sendable {
    struct Entry: Equatable, Sendable {
        let value: TOMLValue
        /// The line of the key (of the header, for a table made by one).
        let line: Int
    }

    /// Where the table was opened: its header or the key that made it; nil
    /// for the document and tables only implied by a longer header.
    let line: Int?
    private(set) var keys: [String] = []
    private var entries: [String: Entry] = [:]

    init(line: Int?) {
        self.line = line
    }

    subscript(key: String) -> TOMLValue? { entries[key]?.value }

    func line(of key: String) -> Int? { entries[key]?.line }

    /// Adds a key the parser has checked is new.
    mutating func append(_ key: String, _ value: TOMLValue, line: Int) {
        precondition(entries[key] == nil, "the TOML parser added \(key) twice")
        keys.append(key)
        entries[key] = Entry(value: value, line: line)
    }
}
