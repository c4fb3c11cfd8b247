import Foundation
@testable import RelayMilter
@testable import RelayConfig
import Testing

/// The parent half of the isolated parse, against stand-in children (shell
/// scripts) that crash, report an error or succeed. The real child,
/// `relay-milter parse-config`, is exercised by the end-to-end CLI tests.
///
/// One at a time: each test writes a script and starts it, and side by side
/// one test's child can inherit another's script still open for writing when
/// that one is started, which then fails (ETXTBSY). That is our reading of
/// one failure of the crash test, seen once with a fuzzer loading the
/// machine and not reproduced in 82 runs since.
@Suite(.serialized)
struct IsolatedConfigParserTests {
    static func child(_ script: String) throws -> IsolatedConfigParser {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isolated-parse-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("child").path
        try "#!/bin/sh\ncat > /dev/null\n\(script)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return IsolatedConfigParser(executable: path)
    }

    static func config(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("isolated-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        return path
    }

    @Test func aChildThatCrashesRefusesTheFileInsteadOfCrashingUs() throws {
        let path = try Self.config("[policy]\nlocal_domains = [\"example.test\"]\n")
        let parser = try Self.child("kill -ABRT $$")
        let error = #expect(throws: ConfigError.self) { try parser.load(path: path) }
        #expect(error?.file == path)
        #expect(error?.message.contains("the TOML parser crashed on this file (signal \(SIGABRT)") == true, "\(String(describing: error))")
    }

    @Test func theChildsErrorKeepsItsLine() throws {
        let path = try Self.config("whatever\n")
        let parser = try Self.child("printf '3\\nunknown key \"x\"' >&2; exit 78")
        let error = #expect(throws: ConfigError.self) { try parser.load(path: path) }
        #expect(error == ConfigError(file: path, line: 3, message: "unknown key \"x\""))
    }

    @Test func aFileTheChildParsedIsParsedHere() throws {
        let path = try Self.config("[policy]\nlocal_domains = [\"example.test\"]\n")
        let config = try Self.child("exit 0").load(path: path)
        #expect(config.policy.localDomains.map(\.description) == ["example.test"])
    }

    @Test func theReportRoundTrips() {
        for error in [ConfigError(file: "f", line: 12, message: "bad\nvalue"), ConfigError(file: "f", line: nil, message: "gone")] {
            #expect(IsolatedConfigParser.configError(fromReport: IsolatedConfigParser.report(error), file: "f") == error)
        }
    }
}
