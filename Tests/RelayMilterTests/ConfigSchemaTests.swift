import Foundation
@testable import RelayConfig
import RelayPolicy
import Testing

/// The schema is the one home of every key: these walk it, so a key added
/// as a row is loaded, printed, documented and diffed, or a test says which.
struct ConfigSchemaTests {
    @Test func everyTableHasKeysAndEveryKeyATable() {
        let sections = ConfigSchema.sections.map(\.name)
        #expect(Set(sections).count == sections.count)
        for section in sections {
            #expect(ConfigSchema.keys.contains { $0.section == section }, "no key in [\(section)]")
        }
        for key in ConfigSchema.keys {
            #expect(sections.contains(key.section), "\(key.path): no such table")
            #expect(!key.doc.isEmpty, "\(key.path): no doc line")
        }
        let paths = ConfigSchema.keys.map(\.path)
        #expect(Set(paths).count == paths.count)
    }

    /// Each key alone in a file, at its default's printed value, loads back to the defaults:
    /// the row's reader and writer agree, and the loader knows the key.
    /// Each warning hangs off a key of the schema, and the defaults warn about nothing.
    @Test func everyCheckNamesAKeyOfTheSchema() {
        let paths = Set(ConfigSchema.keys.map(\.path))
        for check in ConfigSchema.checks {
            #expect(paths.contains(check.key), "\(check.key): not a key of the schema")
        }
        var config = RelayMilterConfig.defaults
        config.policy.localDomains = [try! DomainPattern(parsing: "example.org")]
        #expect(config.warnings.isEmpty)
    }

    @Test(arguments: ConfigSchema.keys.map(\.path))
    func eachKeyLoadsWhatItPrints(path: String) throws {
        let key = try #require(ConfigSchema.keys.first { $0.path == path })
        let defaults = RelayMilterConfig.defaults
        let file = "[\(key.section)]\n\(key.name) = \(key.value(in: defaults))\n"
        let loaded = try ConfigLoader.parse(file, file: "one-key.toml")
        #expect(loaded == defaults, "\(file)")
    }

    /// The shipped config names every key, in its table.
    @Test func theShippedConfigShowsEveryKey() throws {
        let text = try String(contentsOfFile: "Config/relay-milter.toml", encoding: .utf8)
        var section = ""
        var shown: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("[") { section = String(line.dropFirst().dropLast()); continue }
            guard !line.hasPrefix("#"), let name = line.split(separator: " ").first else { continue }
            shown.insert("\(section).\(name)")
        }
        let missing = ConfigSchema.keys.map(\.path).filter { !shown.contains($0) }
        #expect(missing.isEmpty, "not in Config/relay-milter.toml: \(missing)")
    }

    @Test func aReloadNamesTheChangesThatWaitForARestart() throws {
        let old = RelayMilterConfig.defaults
        var new = old
        new.milter.socket = .inet(port: 10026, host: "127.0.0.1")
        new.service.logLevel = .debug
        new.rules.mode = .logOnly
        new.cache.ttlSeconds[.open] = 3600
        #expect(ConfigSchema.restartOnlyChanges(from: old, to: new) == ["milter.socket", "service.log_level"])
        #expect(ConfigSchema.restartOnlyChanges(from: old, to: old).isEmpty)
    }
}
