import Foundation
@testable import RelayMilter
import Testing
import RelayProbe
import VerdictStore

struct RbldnsdZoneTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func record(_ host: String, _ verdict: String, expiresIn: TimeInterval = 3600, accepted: Int = 0) -> VerdictRecord {
        VerdictRecord(host: host, verdict: verdict, testedAt: now, expiresAt: now.addingTimeInterval(expiresIn),
                      acceptedTests: Array(repeating: "t", count: accepted), testsRun: accepted > 0 ? 20 : 0, source: .probe)
    }

    @Test func listsUnexpiredBadIPv4HostsInOrder() {
        let zone = RbldnsdZone.render(RbldnsdZone.hosts([
            Self.record("192.0.2.20", "open", accepted: 16),
            Self.record("192.0.2.3", "open_unconfirmed"),
            Self.record("192.0.2.4", "closed"),
            Self.record("192.0.2.5", "open", expiresIn: -1),
            Self.record("2001:db8::1", "open"),
        ]), badVerdicts: [.open, .openUnconfirmed], ttlSeconds: 900, now: Self.now)
        let entries = zone.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("$") }
        #expect(entries == [
            "192.0.2.3 :127.0.0.2:open relay (verdict open_unconfirmed), tested 2027-01-15",
            "192.0.2.20 :127.0.0.2:open relay (verdict open, 16/20 relay tests accepted), tested 2027-01-15",
        ])
        #expect(zone.contains("\n$TTL 900\n"))
        #expect(zone.contains("2 listed"))
    }

    @Test func theIPv6DatasetListsTheIPv6HostsAlone() {
        let zone = RbldnsdZone.render(RbldnsdZone.hosts([
            Self.record("2001:db8::25", "open"),
            Self.record("192.0.2.20", "open"),
            Self.record("2001:db8::3", "open"),
            Self.record("2001:db8::4", "closed"),
            Self.record("::ffff:192.0.2.21", "open"),
        ]), dataset: .ip6trie, badVerdicts: [.open], ttlSeconds: 900, now: Self.now)
        let entries = zone.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("$") }
        #expect(entries == [
            "2001:db8::3 :127.0.0.2:open relay (verdict open), tested 2027-01-15",
            "2001:db8::25 :127.0.0.2:open relay (verdict open), tested 2027-01-15",
        ])
        #expect(zone.contains("ip6trie"))
    }

    /// A trapped host is listed apart: its own answer, and a text that says
    /// what it did rather than calling it a relay.
    @Test func aTrappedHostAnswersApart() {
        let zone = RbldnsdZone.render(RbldnsdZone.hosts([Self.record("192.0.2.9", "trapped"), Self.record("192.0.2.20", "open")]),
                                      badVerdicts: [.open, .trapped], ttlSeconds: 900, now: Self.now)
        let entries = zone.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("$") }
        #expect(entries == [
            "192.0.2.9 :127.0.0.3:relay attempt caught by a trap (verdict trapped), seen 2027-01-15",
            "192.0.2.20 :127.0.0.2:open relay (verdict open), tested 2027-01-15",
        ])
    }

    @Test func anEmptyCacheIsAValidEmptyZone() {
        let zone = RbldnsdZone.render([], badVerdicts: [.open], ttlSeconds: 3600, now: Self.now)
        #expect(zone.split(separator: "\n").allSatisfy { $0.hasPrefix("#") || $0 == "$TTL 3600" })
    }

    /// The TXT names the verdict: no verdict may bring zone syntax into it.
    @Test(arguments: ProbeVerdict.allCases)
    func textCarriesNoZoneSyntax(verdict: ProbeVerdict) throws {
        var summary = try #require(Self.record("192.0.2.1", "open").summary)
        summary.verdict = verdict
        #expect(!RbldnsdZone.text(for: summary).contains(where: { $0 == "$" || $0.isNewline }))
    }

    /// A record of a verdict this release does not know (written by a newer
    /// one) lists nothing: the host counts as untested.
    @Test func anUnknownVerdictIsNotListed() {
        let zone = RbldnsdZone.render(RbldnsdZone.hosts([Self.record("192.0.2.1", "open_by_proxy")]),
                                      badVerdicts: Set(ProbeVerdict.allCases), ttlSeconds: 900, now: Self.now)
        #expect(!zone.contains("192.0.2.1"))
    }
}
