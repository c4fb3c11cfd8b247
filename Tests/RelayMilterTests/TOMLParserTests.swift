import Foundation
@testable import RelayConfig
import Testing

/// relay-milter's TOML parser against Python's `tomllib` (a TOML 1.0 parser
/// in the standard library since 3.11): the same documents accepted and
/// refused, and the same values, for hand-written cases of every rule and
/// for thousands of mutants of them and of the shipped config.
struct TOMLParserTests {
    /// Documents TOML allows.
    static let valid: [String] = [
        "", "# only a comment", "\n\n", "a = 1", "a = -0", "a = +99", "a = 1_000", "a = 0xDEAD_beef", "a = 0o755",
        "a = 0b1101", "a = 9223372036854775807", "a = -9223372036854775808", "a = 3.14", "a = -0.0", "a = 1e10",
        "a = 1E-5", "a = 6.626e-34", "a = 9_224_617.445_991", "a = 1e1_0", "a = inf", "a = -inf", "a = +nan",
        "a = true", "b = false", "a = 1979-05-27T07:32:00Z", "a = 1979-05-27T00:32:00.999999-07:00",
        "a = 1979-05-27 07:32:00z", "a = 1979-05-27T07:32:00", "a = 1979-05-27", "a = 07:32:00",
        "a = 00:32:00.5", "a = 2000-02-29",
        "a = \"tab\\there \\\"q\\\" \\\\ \\b\\f\\r\\n\"", "a = \"\\u00e9 \\U0001F600 é\"", "a = 'C:\\path\\x'",
        "a = \"\"\"\nfirst\nsecond\"\"\"", "a = \"\"\"one \\\n    two \\  \n\n  three\"\"\"", "a = \"\"\"a\"\"\"\"",
        "a = \"\"\"a\"\"\"\"\"", "a = \"\"\"\"\"\"", "a = '''x''''", "a = '''\n raw \\ \"quotes\" '''", "a = \"\"\"q\"\"q\"\"\"", "a = \"\"\"\"\"\"\"",
        "\"quoted key\" = 1", "'lit.eral' = 1", "\"\" = 1", "a.b.c = 1", "a . b = 1", "3.14 = 1", "1234 = 1",
        "-_- = 1", "a.\"b.c\".d = 1", "[a]\nx = 1\n[b]\ny = 2", "[a.b.c]\n[a]\nx = 1", "[ a . b ]\n", "[ \"q\" . 'r' ]",
        "[a]\nb.c = 1\n[a.b.d]\nx = 1", "[a]\nb.c = 1\nb.d = 2", "[[arr]]\nx = 1\n[[arr]]\nx = 2",
        "[[a.b]]\n[a.b.c]\nx = 1", "[[a]]\n[[a.b]]\n[[a]]", "[a.b.c]\n[a]\nb.d = 1", "a = []", "a = [1, 2,]",
        "a = [\n  1,\n  # comment\n  2\n]", "a = [[1, 2], ['a']]", "a = [1, \"a\", {x = 1}, [], 1979-05-27]",
        "a = [ ]", "a = {}", "a = { x = 1, y.z = 2, y.w = 3 }", "a = {x = {y = 1}}", "a = {x=[1,{y=2}]}",
        "a = 1\r\nb = 2\r\n", "a = \"\"\"x\r\ny\"\"\"", "# tab\tin a comment\na = 1 # é and\ttab",
        "\t a\t=\t1\t# x", "[policy]\nmode = \"enforce\"\nlocal_domains = [\"example.org\", 'example.net']\n",
        "[cache.ttl]\nopen = \"30d\"\n[cache]\npath = \"/x\"", "[cache]\nttl.open = \"1d\"", "x = 1\n\n[t]\n\n\ny = 2\n",
    ]

    /// Documents TOML refuses.
    static let invalid: [String] = [
        "a = ", "a", "= 1", "a = 1 b = 2", "a = 01", "a = 1__0", "a = _1", "a = 1_", "a = 0x", "a = +0x1", "a = 0X1",
        "a = 1.", "a = .1", "a = 1e", "a = 1.e5", "a = 00.1",
        "a = True", "a = nan1", "a = enforce", "a = 1979-13-01", "a = 2001-02-29", "a = 24:00:00", "a = 07:32",
        "a = 1979-05-27T", "a = 1979-05-27T07:32:00+25:00", "a = 1979-5-27", "a = 1979-05-27T07:32:60",
        "a = \"unclosed", "a = \"\\x41\"", "a = \"\\u00\"", "a = \"\\uD800\"", "a = \"ctl\u{01}\"", "a = '''x",
        "a = \"a\nb\"", "a = 'a\nb'", "a = \"\"\"x\\ y\"\"\"", "a = '''x''''''", "a = \"\u{7F}\"",
        "a.b = 1\na.b = 2", "a = 1\na = 2", "a = 1\na.b = 2", "[a]\n[a]", "[a]\nb = 1\n[a.b]", "a.b = 1\n[a]",
        "[a]\nb.c = 1\n[a.b]", "a = {}\n[a]", "a = {x = 1}\na.y = 2", "[a.b]\n[a]\nb = 1", "[a.b]\n[a]\nb.c = 1",
        "[[a]]\n[a]", "a = [1]\n[[a]]", "[a]\n[[a]]", "a = {x = 1}\n[a.y]", "a = [{x = 1}]\n[a.y]",
        "[", "[]", "[a", "[a]]", "[[a]", "[a] x = 1", "[.a]", "[a.]", "[a..b]", "[ [a]]", "[[a] ]", "[\"\"\"a\"\"\"]",
        "a = [1", "a = [1,,2]", "a = [,]", "a = [1 2]", "a = [1,}]", "a = {x = 1,}", "a = {x = 1\n}", "a = {x = 1, x = 2}",
        "a = {", "a = {x}", "a = { x = 1 y = 2 }", "a = 1\rb = 2", "# ctl\u{01}", "a = 1 # del\u{7F}", "a = 1\n\u{0C}",
        "\"\"\"a\"\"\" = 1", "a.'b' . = 1", "a = +true", "a = 1979-05-27 07:32", "a = 1 2",
    ]

    /// Integers TOML 1.0 says a parser must refuse when it cannot hold them
    /// losslessly, which relay-milter does (64 bits) and tomllib does not
    /// (Python's integers have no bound).
    static let beyond64Bits = ["a = 9223372036854775808", "a = -9223372036854775809", "a = 0xFFFFFFFFFFFFFFFF"]

    @Test(arguments: beyond64Bits) func integersBeyond64BitsAreRefused(document: String) {
        #expect(throws: TOMLSyntaxError.self) { try TOMLParser.parse(document) }
    }

    @Test func agreesWithPythonsTOMLLibrary() throws {
        let shipped = try String(contentsOfFile: "Config/relay-milter.toml", encoding: .utf8)
        var documents = Self.valid + Self.invalid + [shipped]
        var random = SplitMix64(seed: 0x746F6D6C)
        let seeds = Self.valid + Self.invalid + Array(repeating: shipped, count: 10)
        for _ in 0..<10_000 {
            documents.append(Self.mutant(of: seeds[Int(random.next() % UInt64(seeds.count))], &random))
        }
        let expected = try Self.tomllib(documents)
        var disagreements: [String] = []
        for (document, python) in zip(documents, expected) {
            let ours: Shape?
            do {
                ours = .table(try TOMLParser.parse(document))
            } catch {
                // Digits added to an integer can take it past 64 bits, where the two differ by design.
                if python != nil, error.message.contains("beyond 64 bits") { continue }
                ours = nil
            }
            if ours != python {
                disagreements.append("\(document.debugDescription): tomllib \(python.map { "\($0)" } ?? "refuses"), ours \(ours.map { "\($0)" } ?? "refuses")")
            }
        }
        let report = disagreements.prefix(20).joined(separator: "\n")
        #expect(disagreements.isEmpty, "\(disagreements.count) of \(documents.count) documents:\n\(report)")
        // The hand-written lists are what their names say.
        for (document, python) in zip(documents, expected).prefix(Self.valid.count + Self.invalid.count) {
            #expect((python != nil) == Self.valid.contains(document), "\(document.debugDescription)")
        }
    }

    @Test func nestingIsBounded() {
        let deep = "a = " + String(repeating: "[", count: 100_000)
        #expect(throws: TOMLSyntaxError.self) { try TOMLParser.parse(deep) }
        let inline = "a = " + String(repeating: "{b = ", count: TOMLParser.maximumNesting + 1) + "1" + String(repeating: "}", count: TOMLParser.maximumNesting + 1)
        #expect(throws: TOMLSyntaxError(line: 1, message: "arrays and inline tables nested more than \(TOMLParser.maximumNesting) deep")) {
            try TOMLParser.parse(inline)
        }
        let allowed = "a = " + String(repeating: "[", count: TOMLParser.maximumNesting) + String(repeating: "]", count: TOMLParser.maximumNesting)
        #expect(throws: Never.self) { try TOMLParser.parse(allowed) }
    }

    @Test func keysKeepTheirLines() throws {
        let table = try TOMLParser.parse("# head\n[policy]\n\nmode = \"enforce\"\nlocal_domains = [\n  \"a\",\n]\nx.y = 1\n[cache.ttl]\nopen = \"1d\"\n")
        let policy = try #require(table["policy"]?.table)
        #expect(table.line(of: "policy") == 2 && policy.line == 2)
        #expect(policy.line(of: "mode") == 4 && policy.line(of: "local_domains") == 5 && policy.line(of: "x") == 8)
        let cache = try #require(table["cache"]?.table)
        #expect(cache.line == nil && cache.line(of: "ttl") == 9 && cache["ttl"]?.table?.line(of: "open") == 10)
        #expect(policy.keys == ["mode", "local_domains", "x"])
    }

    @Test func aByteOrderMarkIsSkipped() throws {
        #expect(try TOMLParser.parse("\u{FEFF}a = 1")["a"] == .integer(1))
    }

    // MARK: The comparison

    /// A value's shape as both parsers can state it: floats by their bits
    /// (every NaN alike), date-times by kind only.
    indirect enum Shape: Equatable, CustomStringConvertible {
        case string(String), integer(String), float(UInt64), boolean(Bool), dateTime, array([Shape]), table([String: Shape])

        init(_ value: TOMLValue) {
            switch value {
            case .string(let text): self = .string(text)
            case .integer(let number): self = .integer(String(number))
            case .float(let number): self = .float(number.isNaN ? 0x7FF8_0000_0000_0000 : number.bitPattern)
            case .boolean(let flag): self = .boolean(flag)
            case .dateTime: self = .dateTime
            case .array(let items): self = .array(items.map(Shape.init))
            case .table(let table): self = .table(table)
            }
        }

        static func table(_ table: TOMLTable) -> Shape {
            .table(Dictionary(uniqueKeysWithValues: table.keys.map { ($0, Shape(table[$0]!)) }))
        }

        /// From tomllib's side: `[kind, value]` pairs.
        init?(json: Any) {
            guard let pair = json as? [Any], let kind = pair.first as? String else { return nil }
            switch kind {
            case "str": self = .string(pair[1] as! String)
            case "int": self = .integer(pair[1] as! String)
            case "float": self = .float(UInt64(pair[1] as! String)!)
            case "bool": self = .boolean(pair[1] as! Bool)
            case "datetime": self = .dateTime
            case "array": self = .array((pair[1] as! [Any]).compactMap(Shape.init(json:)))
            default: self = .table((pair[1] as! [String: Any]).compactMapValues(Shape.init(json:)))
            }
        }

        var description: String {
            switch self {
            case .string(let text): text.debugDescription
            case .integer(let text): text
            case .float(let bits): "\(Double(bitPattern: bits))"
            case .boolean(let flag): "\(flag)"
            case .dateTime: "<date-time>"
            case .array(let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
            case .table(let entries): "{" + entries.sorted { $0.key < $1.key }.map { "\($0.key.debugDescription): \($0.value)" }.joined(separator: ", ") + "}"
            }
        }
    }

    /// Each document through tomllib in one python3 process: its shape, or nil where tomllib refuses it.
    static func tomllib(_ documents: [String]) throws -> [Shape?] {
        let script = """
            import datetime, json, struct, sys, tomllib
            def shape(v):
                if isinstance(v, bool): return ["bool", v]
                if isinstance(v, int): return ["int", str(v)]
                if isinstance(v, float):
                    return ["float", str(0x7FF8000000000000 if v != v else struct.unpack("<Q", struct.pack("<d", v))[0])]
                if isinstance(v, str): return ["str", v]
                if isinstance(v, (datetime.date, datetime.time)): return ["datetime"]
                if isinstance(v, list): return ["array", [shape(x) for x in v]]
                return ["table", {k: shape(x) for k, x in v.items()}]
            out = []
            for doc in json.load(sys.stdin):
                try: out.append(shape(tomllib.loads(doc)))
                except tomllib.TOMLDecodeError: out.append(None)
            json.dump(out, sys.stdout)
            """
        // The question from a file, so that no second thread has to feed a
        // pipe while this one reads the answer.
        let questions = FileManager.default.temporaryDirectory.appendingPathComponent("toml-documents-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: documents).write(to: questions)
        defer { try? FileManager.default.removeItem(at: questions) }
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script]
        python.standardInput = try FileHandle(forReadingFrom: questions)
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        let answer = output.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        try #require(python.terminationStatus == 0, "python3 with tomllib (3.11 or later) is needed")
        let shapes = try #require(JSONSerialization.jsonObject(with: answer) as? [Any])
        try #require(shapes.count == documents.count)
        return shapes.map { $0 is NSNull ? nil : Shape(json: $0) }
    }

    /// A small edit of `document` in the places TOML is strict about.
    static func mutant(of document: String, _ random: inout SplitMix64) -> String {
        var bytes = Array(document.utf8)
        let significant = Array("[]{}\"'=.,#\n\r\\ \t_+-:eExob0179TZ".utf8)
        for _ in 0...(random.next() % 3) {
            let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count + 1))
            switch random.next() % 5 {
            case 0 where !bytes.isEmpty && position < bytes.count:
                bytes.remove(at: position)
            case 1, 2:
                bytes.insert(significant[Int(random.next() % UInt64(significant.count))], at: position)
            case 3:
                // A line said twice: duplicate keys and headers.
                let lines = bytes.split(separator: .lineFeed, omittingEmptySubsequences: false)
                let line = lines[Int(random.next() % UInt64(lines.count))]
                bytes += [.lineFeed] + line
            default:
                if position < bytes.count { bytes[position] = significant[Int(random.next() % UInt64(significant.count))] }
            }
        }
        // Kept valid UTF-8, as the loader's input always is (it refuses other bytes).
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A small seeded generator, so that the mutants are the same every run.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
