import Foundation
import RelayConfig
import RelayProbe
import RelayPolicy
import VerdictStore

/// `relay-milter cache ...`: the verdict database as an admin sees it. Works
/// beside a running daemon (SQLite WAL); the daemon reads the file again
/// within 10 seconds of a change (`VerdictDatabase`), or at SIGHUP.
public struct CacheCommands {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    let store: VerdictStore
    let config: RelayMilterConfig

    public init(config: RelayMilterConfig) throws(Failure) {
        self.config = config
        do {
            store = try VerdictStore(path: config.cache.path)
        } catch {
            throw Failure(description: "cannot open \(config.cache.path): \(error)")
        }
    }

    static func host(_ text: String) throws(Failure) -> String {
        guard let address = IPAddress(text) else { throw Failure(description: "\"\(text)\" is not an IP address") }
        return "\(address)"
    }

    public func list(verdict: String?, json: Bool, now: Date = Date()) throws -> String {
        let records = try store.records(verdict: verdict)
        if json { return records.map { Self.json($0) + "\n" }.joined() }
        var out = "host                                     verdict           tested                expires               source  tests\n"
        for record in records {
            let expired = record.isExpired(at: now) ? " (expired)" : ""
            out += UntrustedText.forTerminal(record.host).padding(40) + " " + UntrustedText.forTerminal(record.verdict).padding(17) + " "
            out += HostReplyTemplate.timestamp(record.testedAt).padding(21) + " "
            out += HostReplyTemplate.timestamp(record.expiresAt).padding(21) + " "
            out += record.source.rawValue.padding(7) + " \(record.acceptedTests.count)/\(record.testsRun)\(expired)\n"
        }
        return out + "\(records.count) host(s)\n"
    }

    public func show(_ text: String, now: Date = Date()) throws -> String {
        let host = try Self.host(text)
        guard let record = try store.record(for: host) else { throw Failure(description: "\(host) is not in the cache") }
        let shown = UntrustedText.forTerminal
        var out = "host:     \(shown(record.host))\nverdict:  \(shown(record.verdict))\(record.isExpired(at: now) ? " (expired)" : "")\n"
        out += "tested:   \(HostReplyTemplate.timestamp(record.testedAt))\nexpires:  \(HostReplyTemplate.timestamp(record.expiresAt))\n"
        out += "source:   \(record.source.rawValue)\nbanner:   \(shown(record.banner))\ndetail:   \(shown(record.detail))\n"
        out += "accepted: \(record.acceptedTests.count)/\(record.testsRun)\n"
        for test in record.acceptedTests { out += "  - \(shown(test))\n" }
        // Registered tests of the host, newest first, with what each proved.
        for test in try store.registeredTests(host: host).prefix(5) {
            out += "registered test \(HostReplyTemplate.timestamp(test.createdAt)): \(test.state.rawValue) (\(shown(test.sentReply)))\n"
            if let arrived = test.deliveredAt {
                out += "  came back from \(shown(test.deliveredFrom ?? "?")) after \(Int(arrived.timeIntervalSince(test.createdAt))) s\n"
            }
            for hop in test.hops { out += "  Received: \(shown(hop))\n" }
        }
        return out
    }

    public func forget(_ text: String) throws -> String {
        let host = try Self.host(text)
        guard try store.forget(host) else { throw Failure(description: "\(host) is not in the cache") }
        let fleet = config.cache.backend == .postgresql
            ? "; other instances keep the shared record: `cache set \(host) closed` clears a listing fleet-wide" : ""
        return "\(host) forgotten (a running relay-milter drops it at its next SIGHUP\(fleet))\n"
    }

    /// A manual listing (`open`) or exemption (`closed`), for `ttl` seconds (default: the verdict's TTL).
    public func set(_ text: String, verdict: String, ttl: String?, now: Date = Date()) throws -> String {
        let host = try Self.host(text)
        guard let known = ProbeVerdict(rawValue: verdict) else {
            throw Failure(description: "\"\(verdict)\" is not a verdict; expected one of \(ProbeVerdict.spellings)")
        }
        var seconds = config.cache.ttl(for: known)
        if let ttl {
            do { seconds = try DurationText.seconds(ttl) } catch { throw Failure(description: "--ttl: \(error)") }
        }
        let record = VerdictRecord(host: host, verdict: verdict, testedAt: now, expiresAt: now.addingTimeInterval(Double(seconds)),
                                   detail: "set by hand", source: .manual)
        try store.saveAsThisInstance(record, config: config)
        guard config.cache.backend == .postgresql else {
            return "\(host) set to \(verdict) until \(HostReplyTemplate.timestamp(record.expiresAt)) (a running relay-milter reads it within 10 seconds)\n"
        }
        return "\(host) set to \(verdict) until \(HostReplyTemplate.timestamp(record.expiresAt)) (queued for the fleet's shared database: the running relay-milter reads it within 10 seconds and shares it within its poll interval)\n"
    }

    public func purgeExpired(now: Date = Date()) throws -> String {
        "\(try store.purgeExpired(at: now)) expired record(s) removed\n"
    }

    public enum ExportFormat: String, CaseIterable, Sendable {
        case csv, json
        /// The IPv4 open relays (an `ip4set` dataset).
        case rbldnsd
        /// The IPv6 open relays (an `ip6trie` dataset).
        case rbldnsdIPv6 = "rbldnsd-ipv6"
    }

    /// Every record as CSV or JSON lines, or the open relays of one address
    /// family as an rbldnsd dataset whose answers live `dnsTTL` seconds.
    public func export(_ format: ExportFormat, dnsTTL: Int = 3600, now: Date = Date()) throws -> String {
        let records = try store.all()
        switch format {
        case .rbldnsd, .rbldnsdIPv6:
            return RbldnsdZone.render(RbldnsdZone.hosts(records), dataset: format == .rbldnsd ? .ip4set : .ip6trie,
                                      badVerdicts: config.enforcement.badVerdicts, ttlSeconds: dnsTTL, now: now)
        case .json:
            return records.map { Self.json($0) + "\n" }.joined()
        case .csv:
            var out = "host,verdict,tested_at,expires_at,source,accepted,tests_run,banner\n"
            for r in records {
                let fields = [r.host, r.verdict, HostReplyTemplate.timestamp(r.testedAt), HostReplyTemplate.timestamp(r.expiresAt),
                              r.source.rawValue, "\(r.acceptedTests.count)", "\(r.testsRun)", r.banner]
                out += fields.map { Self.csvField(UntrustedText.forCSV($0)) }.joined(separator: ",") + "\n"
            }
            return out
        }
    }

    static func csvField(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacing("\"", with: "\"\"") + "\""
    }

    struct JSONRecord: Encodable {
        let host, verdict, tested_at, expires_at, source, banner, detail: String
        let accepted_tests: [String]
        let tests_run: Int
    }

    static func json(_ r: VerdictRecord) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let value = JSONRecord(host: r.host, verdict: r.verdict, tested_at: HostReplyTemplate.timestamp(r.testedAt),
                               expires_at: HostReplyTemplate.timestamp(r.expiresAt), source: r.source.rawValue,
                               banner: r.banner, detail: r.detail, accepted_tests: r.acceptedTests, tests_run: r.testsRun)
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
