/// Why a text is not TOML: the line and what is wrong, in words for the admin
/// who edits the file.
struct TOMLSyntaxError: Error, Equatable {
    let line: Int
    let message: String
}

/// A TOML 1.0 parser: recursive descent over the UTF-8 bytes, every error a
/// `TOMLSyntaxError`, never a trap, and nesting bounded so that no input can
/// exhaust the stack. Its accept/reject decisions and values are checked
/// against Python's `tomllib` (TOMLParserTests).
///
/// Written here rather than taken from a library because the only TOML
/// package on hand, TOMLKit, bundles the C++ toml++ parser, which aborts the
/// process on some malformed files and leaks every parse; a SIGHUP after a
/// half-finished edit must cost an error, never the milter of a live MX.
///
/// As `tomllib` does, a CR LF pair reads as one line feed everywhere,
/// multi-line strings included. Unlike it, a byte order mark at the start
/// is skipped.
struct TOMLParser {
    /// Arrays and inline tables nested deeper than this are refused.
    static let maximumNesting = 64

    static func parse(_ source: String) throws(TOMLSyntaxError) -> TOMLTable {
        var bytes = Array(source.utf8)
        // A byte order mark, as some Windows editors write, is not part of the text.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var parser = TOMLParser(bytes: bytes)
        return try parser.document()
    }

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    /// The last header's name, which error messages put before a key.
    private var headerPath: [String] = []

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    // MARK: Document and tables

    private mutating func document() throws(TOMLSyntaxError) -> TOMLTable {
        let root = TableBuilder(origin: .header, line: nil)
        var current = root
        while true {
            skipBlanks()
            guard let byte = peek() else { break }
            switch byte {
            case .lineFeed, .carriageReturn:
                try newline()
            case .hash:
                try comment()
            case .openBracket:
                current = try header(in: root)
                try endOfLine(after: "the table header")
            default:
                try keyValue(into: current)
                try endOfLine(after: "the value")
            }
        }
        return root.build()
    }

    /// `[a.b]` or `[[a.b]]`: the table that the lines after it fill.
    private mutating func header(in root: TableBuilder) throws(TOMLSyntaxError) -> TableBuilder {
        let headerLine = line
        index += 1
        let isArray = peek() == .openBracket
        if isArray { index += 1 }
        skipBlanks()
        guard let byte = peek(), byte.isBareKey || byte == .quote || byte == .apostrophe else {
            throw fail("a table header must start with a name: [name] or [name.sub]")
        }
        let path = try key()
        skipBlanks()
        let closer = isArray ? "]]" : "]"
        guard peek() == .closeBracket, !isArray || peek(1) == .closeBracket else {
            throw fail("the table header is not closed with \"\(closer)\"")
        }
        index += isArray ? 2 : 1
        headerPath = path

        var table = root
        for depth in path.indices.dropLast() {
            table = try descend(table, path, depth)
        }
        let name = path[path.count - 1], qualified = path.joined(separator: ".")
        switch table.slots[name] {
        case nil:
            let new = TableBuilder(origin: .header, line: headerLine)
            table.add(name, isArray ? .tables([new], line: headerLine) : .table(new))
            return new
        case .table(let existing):
            if isArray { throw fail("[[\(qualified)]]: \(qualified) is already a table, not an array of tables") }
            guard case .implied = existing.origin else {
                throw fail("[\(qualified)] is defined twice" + (existing.line.map { " (first on line \($0))" } ?? ""))
            }
            existing.origin = .header
            existing.line = headerLine
            return existing
        case .tables(var list, let firstLine):
            if !isArray { throw fail("[\(qualified)]: \(qualified) is already an array of tables ([[\(qualified)]])") }
            let new = TableBuilder(origin: .header, line: headerLine)
            list.append(new)
            table.slots[name] = .tables(list, line: firstLine)
            return new
        case .value(_, let valueLine):
            throw fail("\(qualified) already has a value (line \(valueLine)), so it cannot be a table")
        }
    }

    /// The table a header passes through on its way to its last name.
    private func descend(_ table: TableBuilder, _ path: [String], _ depth: Int) throws(TOMLSyntaxError) -> TableBuilder {
        let name = path[depth]
        switch table.slots[name] {
        case nil:
            let new = TableBuilder(origin: .implied, line: nil)
            table.add(name, .table(new))
            return new
        case .table(let inner):
            return inner
        case .tables(let list, _):
            return list[list.count - 1]
        case .value(let value, let valueLine):
            let qualified = path[...depth].joined(separator: ".")
            throw fail(value.table == nil
                ? "\(qualified) already has a value (line \(valueLine)), so it cannot hold a table"
                : "\(qualified) is an inline table (line \(valueLine)), which cannot be extended")
        }
    }

    /// `key = value`, the key perhaps dotted (`a.b = 1` makes table a).
    private mutating func keyValue(into table: TableBuilder, depth: Int = 0) throws(TOMLSyntaxError) {
        let keyLine = line
        guard let byte = peek(), byte.isBareKey || byte == .quote || byte == .apostrophe else {
            throw fail("expected a key (letters, digits, '_' and '-', or a quoted name), found \(describe(peek()))")
        }
        let path = try key()
        skipBlanks()
        guard peek() == .equals else {
            throw fail("expected \"=\" after the key \(path.joined(separator: ".")), found \(describe(peek()))")
        }
        index += 1
        skipBlanks()
        let value = try self.value(depth: depth)

        // Named in errors as the file's reader knows them: policy.mode, not mode.
        let prefix = depth == 0 ? headerPath : []
        var target = table
        for depth in path.indices.dropLast() {
            let name = path[depth], qualified = (prefix + path[...depth]).joined(separator: ".")
            switch target.slots[name] {
            case nil:
                let new = TableBuilder(origin: .dotted, line: keyLine)
                target.add(name, .table(new))
                target = new
            case .table(let inner):
                switch inner.origin {
                case .implied:
                    inner.origin = .dotted
                case .dotted:
                    break
                case .header:
                    throw fail("\(qualified) is a table defined elsewhere" + (inner.line.map { " (line \($0))" } ?? "")
                        + "; dotted keys cannot add to it")
                }
                target = inner
            case .tables:
                throw fail("\(qualified) is an array of tables; dotted keys cannot add to it")
            case .value(let value, let valueLine):
                throw fail(value.table == nil
                    ? "\(qualified) already has a value (line \(valueLine)), so it cannot hold a table"
                    : "\(qualified) is an inline table (line \(valueLine)), which cannot be extended")
            }
        }
        let name = path[path.count - 1]
        if target.slots[name] != nil {
            throw fail("\((prefix + path).joined(separator: ".")) is defined twice" + (target.lineOfKey(name).map { " (first on line \($0))" } ?? ""))
        }
        target.add(name, .value(value, line: keyLine))
    }

    /// A key, its parts split at unquoted dots.
    private mutating func key() throws(TOMLSyntaxError) -> [String] {
        var parts = [try simpleKey()]
        while true {
            let mark = index
            skipBlanks()
            guard peek() == .dot else {
                index = mark
                return parts
            }
            index += 1
            skipBlanks()
            parts.append(try simpleKey())
        }
    }

    private mutating func simpleKey() throws(TOMLSyntaxError) -> String {
        switch peek() {
        case .quote:
            if peek(1) == .quote, peek(2) == .quote { throw fail("a key cannot be a multi-line string") }
            return try basicString()
        case .apostrophe:
            if peek(1) == .apostrophe, peek(2) == .apostrophe { throw fail("a key cannot be a multi-line string") }
            return try literalString()
        default:
            let start = index
            while let byte = peek(), byte.isBareKey { index += 1 }
            guard index > start else {
                throw fail("expected a key (letters, digits, '_' and '-', or a quoted name), found \(describe(peek()))")
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
    }

    // MARK: Values

    private mutating func value(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        guard depth < Self.maximumNesting else {
            throw fail("arrays and inline tables nested more than \(Self.maximumNesting) deep")
        }
        switch peek() {
        case .quote:
            return .string(peek(1) == .quote && peek(2) == .quote ? try multiLineString(basic: true) : try basicString())
        case .apostrophe:
            return .string(peek(1) == .apostrophe && peek(2) == .apostrophe ? try multiLineString(basic: false) : try literalString())
        case .openBracket:
            return try array(depth: depth)
        case .openBrace:
            return try inlineTable(depth: depth)
        case nil, .lineFeed, .carriageReturn, .hash:
            throw fail("a key without a value; write key = value")
        default:
            return try bareValue()
        }
    }

    private mutating func array(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        let openLine = line
        index += 1
        var items: [TOMLValue] = []
        while true {
            try skipArrayFiller()
            if peek() == .closeBracket { break }
            if peek() == .closeBrace { throw fail("\"}\" where an array value should be") }
            if peek() == nil { throw TOMLSyntaxError(line: openLine, message: "a list is not closed (a missing \"]\"?)") }
            items.append(try value(depth: depth + 1))
            try skipArrayFiller()
            if peek() == .comma {
                index += 1
                continue
            }
            guard peek() == .closeBracket else {
                if peek() == nil { throw TOMLSyntaxError(line: openLine, message: "a list is not closed (a missing \"]\"?)") }
                throw fail("expected \",\" or \"]\" in the list, found \(describe(peek()))")
            }
            break
        }
        index += 1
        return .array(items)
    }

    /// Blanks, line breaks and comments, which may stand between list items.
    private mutating func skipArrayFiller() throws(TOMLSyntaxError) {
        while true {
            skipBlanks()
            switch peek() {
            case .lineFeed, .carriageReturn: try newline()
            case .hash: try comment()
            default: return
            }
        }
    }

    /// `{ a = 1, b.c = 2 }`, on one line, closed to later additions.
    private mutating func inlineTable(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        let table = TableBuilder(origin: .header, line: line)
        index += 1
        skipBlanks()
        if peek() == .closeBrace {
            index += 1
            return .table(table.build())
        }
        while true {
            skipBlanks()
            if peek() == .closeBrace { throw fail("an inline table may not end with a comma") }
            try keyValue(into: table, depth: depth + 1)
            skipBlanks()
            switch peek() {
            case .comma:
                index += 1
            case .closeBrace:
                index += 1
                return .table(table.build())
            case .lineFeed, .carriageReturn, nil:
                throw fail("an inline table { ... } must close on the line it opens")
            default:
                throw fail("expected \",\" or \"}\" in the inline table, found \(describe(peek()))")
            }
        }
    }

    /// true, false, a number or a date-time: the run of bytes up to the next delimiter.
    private mutating func bareValue() throws(TOMLSyntaxError) -> TOMLValue {
        let start = index
        while let byte = peek(), byte.isBareValue { index += 1 }
        // A date and a time may be separated by one space: 1979-05-27 07:32:00.
        if TOMLScalar.isDate(bytes[start..<index]), peek() == .space,
           let first = peek(1), first.isDigit, let second = peek(2), second.isDigit, peek(3) == .colon {
            index += 1
            while let byte = peek(), byte.isBareValue { index += 1 }
        }
        let token = bytes[start..<index]
        guard !token.isEmpty else { throw fail("expected a value, found \(describe(peek()))") }
        if let value = TOMLScalar.value(token) { return value }
        let text = String(decoding: token, as: UTF8.self)
        if let message = TOMLScalar.problem(token) { throw fail("\(text): \(message)") }
        throw fail("\(text) is not a value: text needs quotes (mode = \"enforce\"), a number is written 42 or 1.5")
    }

    // MARK: Strings

    /// `"..."`, with escapes, on one line.
    private mutating func basicString() throws(TOMLSyntaxError) -> String {
        index += 1
        var text: [UInt8] = []
        while true {
            guard let byte = peek(), byte != .lineFeed, byte != .carriageReturn else {
                throw fail("a quoted string is not closed on its line (a missing closing quote?)")
            }
            switch byte {
            case .quote:
                index += 1
                return String(decoding: text, as: UTF8.self)
            case .backslash:
                try escape(into: &text)
            default:
                try checkNotControl(byte, in: "a string")
                text.append(byte)
                index += 1
            }
        }
    }

    /// `'...'`, taken as written, on one line.
    private mutating func literalString() throws(TOMLSyntaxError) -> String {
        index += 1
        let start = index
        while true {
            guard let byte = peek(), byte != .lineFeed, byte != .carriageReturn else {
                throw fail("a quoted string is not closed on its line (a missing closing quote?)")
            }
            if byte == .apostrophe { break }
            try checkNotControl(byte, in: "a string")
            index += 1
        }
        defer { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// `"""..."""` (with escapes) or `'''...'''`; a line break right after
    /// the opening quotes is not part of it.
    private mutating func multiLineString(basic: Bool) throws(TOMLSyntaxError) -> String {
        let openLine = line
        let delimiter: UInt8 = basic ? .quote : .apostrophe
        index += 3
        if peek() == .lineFeed || (peek() == .carriageReturn && peek(1) == .lineFeed) { try newline() }
        var text: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw TOMLSyntaxError(line: openLine, message: "a multi-line string opened here is not closed (a missing \(basic ? "\"\"\"" : "'''")?)")
            }
            switch byte {
            case delimiter:
                var run = 0
                while peek() == delimiter { run += 1; index += 1 }
                if run < 3 {
                    text += repeatElement(delimiter, count: run)
                    continue
                }
                guard run <= 5 else { throw fail("too many quotes where a multi-line string closes") }
                text += repeatElement(delimiter, count: run - 3)
                return String(decoding: text, as: UTF8.self)
            case .lineFeed, .carriageReturn:
                try newline()
                text.append(.lineFeed)
            case .backslash where basic:
                if try !skipLineEndingBackslash() { try escape(into: &text) }
            default:
                try checkNotControl(byte, in: "a string")
                text.append(byte)
                index += 1
            }
        }
    }

    /// A backslash that ends its line (blanks may follow it) joins the next
    /// non-blank text: false, and nothing consumed, if this one does not.
    private mutating func skipLineEndingBackslash() throws(TOMLSyntaxError) -> Bool {
        var probe = index + 1
        while probe < bytes.count, bytes[probe] == .space || bytes[probe] == .tab { probe += 1 }
        guard probe < bytes.count, bytes[probe] == .lineFeed || (bytes[probe] == .carriageReturn && probe + 1 < bytes.count && bytes[probe + 1] == .lineFeed) else {
            return false
        }
        index = probe
        while let byte = peek(), [.space, .tab, .lineFeed, .carriageReturn].contains(byte) {
            if byte == .space || byte == .tab { index += 1 } else { try newline() }
        }
        return true
    }

    private mutating func escape(into text: inout [UInt8]) throws(TOMLSyntaxError) {
        index += 1
        guard let letter = peek() else { throw fail("a string ends in a lone backslash") }
        index += 1
        let simple: [UInt8: UInt8] = [UInt8(ascii: "b"): 0x08, UInt8(ascii: "t"): .tab, UInt8(ascii: "n"): .lineFeed,
                                      UInt8(ascii: "f"): 0x0C, UInt8(ascii: "r"): .carriageReturn, .quote: .quote, .backslash: .backslash]
        if let byte = simple[letter] {
            text.append(byte)
            return
        }
        let width = letter == UInt8(ascii: "u") ? 4 : letter == UInt8(ascii: "U") ? 8 : 0
        guard width > 0 else {
            throw fail("\\\(String(decoding: [letter], as: UTF8.self)) is not an escape (a backslash itself is written \\\\, or use a 'literal string')")
        }
        guard index + width <= bytes.count, bytes[index..<index + width].allSatisfy(\.isHexDigit),
              let code = UInt32(String(decoding: bytes[index..<index + width], as: UTF8.self), radix: 16),
              let scalar = Unicode.Scalar(code) else {
            throw fail("\\\(String(decoding: [letter], as: UTF8.self)) needs \(width) hex digits naming a Unicode scalar value")
        }
        index += width
        text += Array(String(Character(scalar)).utf8)
    }

    private func checkNotControl(_ byte: UInt8, in place: String) throws(TOMLSyntaxError) {
        guard (byte < 0x20 && byte != .tab) || byte == 0x7F else { return }
        let hex = String(byte, radix: 16, uppercase: true)
        throw fail("a control character (U+\(String(repeating: "0", count: 4 - hex.count) + hex)) in \(place); write it as an escape such as \\t or \\u0001")
    }

    // MARK: Blanks, comments, line ends

    private mutating func skipBlanks() {
        while let byte = peek(), byte == .space || byte == .tab { index += 1 }
    }

    private mutating func newline() throws(TOMLSyntaxError) {
        if peek() == .carriageReturn {
            guard peek(1) == .lineFeed else { throw fail("a carriage return (CR) without a line feed (LF) after it") }
            index += 1
        }
        index += 1
        line += 1
    }

    /// `# ...` up to the line break, which stays.
    private mutating func comment() throws(TOMLSyntaxError) {
        index += 1
        while let byte = peek(), byte != .lineFeed {
            if byte == .carriageReturn, peek(1) == .lineFeed { return }
            try checkNotControl(byte, in: "a comment")
            index += 1
        }
    }

    private mutating func endOfLine(after what: String) throws(TOMLSyntaxError) {
        skipBlanks()
        if peek() == .hash { try comment() }
        guard let byte = peek() else { return }
        guard byte == .lineFeed || byte == .carriageReturn else {
            throw fail("expected the end of the line after \(what), found \(describe(byte)) (one key = value per line)")
        }
        try newline()
    }

    // MARK: Reading bytes

    private func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    private func describe(_ byte: UInt8?) -> String {
        guard let byte else { return "the end of the file" }
        switch byte {
        case .lineFeed, .carriageReturn: return "the end of the line"
        case 0x21..<0x7F: return "\"\(String(decoding: [byte], as: UTF8.self))\""
        default: return "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }
    }

    private func fail(_ message: String) -> TOMLSyntaxError {
        TOMLSyntaxError(line: line, message: message)
    }
}

/// A table while it is being filled: how it came to be decides what may still
/// add to it (TOML's rules against defining a table twice).
private final class TableBuilder {
    enum Origin {
        /// Named only on the way to a longer header (`a` in `[a.b]`): a header may still define it.
        case implied
        /// Defined by a header or an inline table.
        case header
        /// Made by dotted keys, which may add to it, but no header. Only keys of
        /// the section that made it can reach it, so no section is recorded.
        case dotted
    }

    enum Slot {
        case value(TOMLValue, line: Int)
        case table(TableBuilder)
        case tables([TableBuilder], line: Int)
    }

    var origin: Origin
    var line: Int?
    private var keys: [String] = []
    var slots: [String: Slot] = [:]

    init(origin: Origin, line: Int?) {
        self.origin = origin
        self.line = line
    }

    func add(_ key: String, _ slot: Slot) {
        keys.append(key)
        slots[key] = slot
    }

    func lineOfKey(_ key: String) -> Int? {
        switch slots[key] {
        case .value(_, let line), .tables(_, let line): line
        case .table(let table): table.line
        case nil: nil
        }
    }

    func build() -> TOMLTable {
        var table = TOMLTable(line: line)
        for key in keys {
            guard let slot = slots[key] else { continue }
            switch slot {
            case .value(let value, let line):
                table.append(key, value, line: line)
            case .table(let inner):
                table.append(key, .table(inner.build()), line: inner.line ?? line ?? 1)
            case .tables(let list, let line):
                table.append(key, .array(list.map { .table($0.build()) }), line: line)
            }
        }
        return table
    }
}

extension UInt8 {
    static let tab = UInt8(ascii: "\t"), lineFeed = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")
    static let space = UInt8(ascii: " "), quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'")
    static let hash = UInt8(ascii: "#"), equals = UInt8(ascii: "="), dot = UInt8(ascii: "."), comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":"), backslash = UInt8(ascii: "\\")
    static let openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}")

    var isDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
    var isHexDigit: Bool {
        isDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
    var isBareKey: Bool {
        isDigit || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || self == UInt8(ascii: "_") || self == UInt8(ascii: "-")
    }
    /// What a number, a boolean or a date-time is made of.
    var isBareValue: Bool {
        isBareKey || self == UInt8(ascii: "+") || self == .dot || self == .colon
    }
}
