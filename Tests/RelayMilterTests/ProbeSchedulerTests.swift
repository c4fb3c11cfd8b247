import Foundation
import Logging
import NIOPosix
@testable import RelayMilter
@testable import RelayConfig
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import Testing
import VerdictStore

/// Which hosts get queued for a test: no sockets, the worker never runs.
struct ProbeSchedulerTests {
    static func scheduler(queueSize: Int = 1000) -> (ProbeScheduler, RelayMilterConfig) {
        var config = RelayMilterConfig.defaults
        config.probe.queueSize = queueSize
        // 203.0.113.0/24 stands for Internet hosts here (nothing is sent:
        // the worker never runs), so the documentation block must be testable.
        config.probe.excludeNetworks.removeAll { $0 == (try! NetworkBlock(parsing: "203.0.113.0/24")) }
        config.policy.trustedNetworks = [try! NetworkBlock(parsing: "198.51.100.0/24")]
        let scheduler = ProbeScheduler(
            prober: SMTPProber(group: MultiThreadedEventLoopGroup.singleton), index: VerdictIndex(), logger: Logger(label: "test"),
            metrics: RelayMetrics(version: "test")
        )
        return (scheduler, config)
    }

    @Test func queuesOncePerHost() {
        let (scheduler, config) = Self.scheduler()
        #expect(scheduler.consider(IPAddress("203.0.113.5")!, config: config) == .queued)
        #expect(scheduler.consider(IPAddress("203.0.113.5")!, config: config) == .alreadyPending)
        #expect(scheduler.consider(IPAddress("203.0.113.6")!, config: config) == .queued)
    }

    @Test(arguments: ["198.51.100.9", "10.1.2.3", "192.168.0.1", "127.0.0.1", "::1", "fe80::1", "fd00::5", "169.254.1.1",
                      // The rest of IANA's special-purpose registries, and multicast.
                      "192.0.0.8", "192.0.2.1", "192.88.99.1", "198.18.0.1", "198.19.255.254", "224.0.0.251", "239.1.2.3",
                      "240.0.0.1", "255.255.255.255", "::", "64:ff9b::c000:201", "2001::1", "2001:db8::25", "2002:c000:201::1",
                      "3fff::1", "ff02::1", "fec0::1"])
    func neverTestsTrustedOrExcluded(address: String) {
        let (scheduler, config) = Self.scheduler()
        #expect(scheduler.consider(IPAddress(address)!, config: config) == .excluded)
    }

    @Test func theMemoryOfTestedNetworksIsBounded() {
        var state = ProbeScheduler.State()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        // 10,000 networks tested within one interval: the oldest half goes each time the limit is passed.
        for i in 0..<10_000 {
            let address = IPAddress("\(1 + i / 65536).\(i / 256 % 256).\(i % 256).1")!
            state.noteTest(of: ProbeScheduler.network(of: address), at: start + Double(i) / 100, interval: 3600, limit: 1000)
            #expect(state.lastTestOfNetwork.count <= 1000)
        }
        // The newest stay remembered, so their networks still wait out the interval.
        #expect(state.lastTestOfNetwork[ProbeScheduler.network(of: IPAddress("1.39.15.1")!)] != nil)
        // Once the interval is over, entries go as soon as the limit is passed again.
        for i in 0..<1001 {
            state.noteTest(of: ProbeScheduler.network(of: IPAddress("2.\(i / 256).\(i % 256).1")!), at: start + 7200, interval: 3600, limit: 1000)
        }
        #expect(state.lastTestOfNetwork.count == 500)
        #expect(state.lastTestOfNetwork.values.allSatisfy { $0 == start + 7200 })
    }

    @Test func loopbackOnlyWhenAllowed() {
        var (scheduler, config) = Self.scheduler()
        config.probe.allowLoopback = true
        #expect(scheduler.consider(IPAddress("127.0.0.3")!, config: config) == .queued)
        #expect(scheduler.consider(IPAddress("10.0.0.1")!, config: config) == .excluded)
        // A narrower exclusion inside loopback still holds: it used to be lifted too.
        config.probe.excludeNetworks.append(try! NetworkBlock(parsing: "127.1.0.0/29"))
        #expect(scheduler.consider(IPAddress("127.1.0.5")!, config: config) == .excluded)
        #expect(scheduler.consider(IPAddress("127.1.0.9")!, config: config) == .queued)
    }

    @Test func boundedQueueDropsTheOverflow() {
        let (scheduler, config) = Self.scheduler(queueSize: 2)
        #expect(scheduler.consider(IPAddress("203.0.113.1")!, config: config) == .queued)
        #expect(scheduler.consider(IPAddress("203.0.113.2")!, config: config) == .queued)
        #expect(scheduler.consider(IPAddress("203.0.113.3")!, config: config) == .queueFull)
    }

    @Test func disabledOrStoppedQueuesNothing() {
        var (scheduler, config) = Self.scheduler()
        config.probe.enabled = false
        #expect(scheduler.consider(IPAddress("203.0.113.1")!, config: config) == .disabled)
        config.probe.enabled = true
        scheduler.stop()
        #expect(scheduler.consider(IPAddress("203.0.113.1")!, config: config) == .disabled)
    }

    @Test func networksForRateLimiting() {
        #expect(ProbeScheduler.network(of: IPAddress("203.0.113.77")!).description == "203.0.113.0/24")
        #expect(ProbeScheduler.network(of: IPAddress("2001:db8:1:2::5")!).description == "2001:db8:1::/48")
    }
}

struct VerdictIndexTests {
    /// A verdict this release does not know (a newer release wrote it) is left
    /// out of the index, so the host counts as untested and is tested again.
    @Test func anUnknownVerdictCountsAsUntested() throws {
        let index = VerdictIndex()
        let now = Date()
        let store = try VerdictStore(path: FileManager.default.temporaryDirectory.appendingPathComponent("index-\(UUID().uuidString).sqlite").path)
        let future = VerdictRecord(host: "192.0.2.9", verdict: "open_by_proxy", testedAt: now, expiresAt: now.addingTimeInterval(60), source: .probe)
        try store.saveAll([future])
        #expect(try index.replaceAll(from: store).hosts == 0)
        index.update(future)
        #expect(index.updateIfNewer(future) == false)
        #expect(index.lookup(IPAddress("192.0.2.9")!, now: now) == .miss && index.countByVerdict.isEmpty)
    }

    /// Another process's changes: a host it removed goes, one it changed is
    /// taken, unless the index holds a later test of it (this process's own
    /// verdict, not yet written) — and the per-verdict counts follow.
    @Test func appliesAnotherProcesssChanges() throws {
        let index = VerdictIndex()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("index-\(UUID().uuidString).sqlite").path
        let daemon = try VerdictStore(path: path)
        func record(_ host: String, _ verdict: String, at time: Date) -> VerdictRecord {
            VerdictRecord(host: host, verdict: verdict, testedAt: time, expiresAt: time.addingTimeInterval(3600), source: .manual)
        }
        try daemon.saveAll([record("192.0.2.1", "open", at: now), record("192.0.2.2", "open", at: now), record("2001:db8::1", "open", at: now)])
        let read = try index.replaceAll(from: daemon).through
        // This process's own later verdict for .2, in the index before the store.
        index.update(record("192.0.2.2", "closed", at: now.addingTimeInterval(5)))
        let command = try VerdictStore(path: path)
        try command.forget("2001:db8::1")
        try command.save(record("192.0.2.1", "closed", at: now.addingTimeInterval(1)))
        try command.save(record("192.0.2.2", "open", at: now.addingTimeInterval(1)))
        try command.save(record("192.0.2.3", "open", at: now.addingTimeInterval(1)))
        let changes = try #require(try daemon.verdictChanges(after: read))
        #expect(index.apply(changes) == 3)
        func verdict(_ host: String) -> String? {
            guard case .hit(let summary) = index.lookup(IPAddress(host)!, now: now) else { return nil }
            return summary.verdict.rawValue
        }
        #expect(verdict("192.0.2.1") == "closed" && verdict("192.0.2.2") == "closed" && verdict("192.0.2.3") == "open")
        #expect(verdict("2001:db8::1") == nil)
        #expect(index.countByVerdict == ["closed": 2, "open": 1] && index.count == 3)
    }

    @Test func hitsExpiresAndMisses() throws {
        let index = VerdictIndex()
        let now = Date()
        let store = try VerdictStore(path: FileManager.default.temporaryDirectory.appendingPathComponent("index-\(UUID().uuidString).sqlite").path)
        try store.saveAll([
            VerdictRecord(host: "192.0.2.1", verdict: "open", testedAt: now, expiresAt: now.addingTimeInterval(60), acceptedTests: ["x"], testsRun: 20, source: .probe),
            VerdictRecord(host: "192.0.2.2", verdict: "closed", testedAt: now, expiresAt: now.addingTimeInterval(-1), source: .probe),
            VerdictRecord(host: "2001:db8::1", verdict: "open", testedAt: now, expiresAt: now.addingTimeInterval(60), source: .manual),
        ])
        #expect(try index.replaceAll(from: store).hosts == 3)
        #expect(index.count == 3)
        guard case .hit(let summary) = index.lookup(IPAddress("192.0.2.1")!, now: now) else { Issue.record("no hit"); return }
        #expect(summary.verdict == .open && summary.acceptedCount == 1 && summary.testsRun == 20 && summary.source == .probe)
        // Who listed it survives the load and the packing: the reply says so.
        guard case .hit(let listed) = index.lookup(IPAddress("2001:db8::1")!, now: now) else { Issue.record("v6 miss"); return }
        #expect(listed.source == .manual)
        guard case .expired = index.lookup(IPAddress("192.0.2.2")!, now: now) else { Issue.record("not expired"); return }
        #expect(index.lookup(IPAddress("192.0.2.3")!, now: now) == .miss)
        // IPv6 in another spelling, and IPv4-mapped IPv6, find the same entries.
        guard case .hit = index.lookup(IPAddress("2001:DB8:0::1")!, now: now) else { Issue.record("v6 miss"); return }
        guard case .hit = index.lookup(IPAddress("::ffff:192.0.2.1")!, now: now) else { Issue.record("mapped miss"); return }
    }

    @Test func hostStanding() {
        let index = VerdictIndex()
        let now = Date()
        index.update(VerdictRecord(host: "203.0.113.7", verdict: "open", testedAt: now, expiresAt: now.addingTimeInterval(60), source: .probe))
        index.update(VerdictRecord(host: "203.0.113.8", verdict: "rcpt_only", testedAt: now, expiresAt: now.addingTimeInterval(60), source: .probe))
        let (scheduler, config) = ProbeSchedulerTests.scheduler()
        let verdicts = HostVerdicts(index: index, scheduler: scheduler, metrics: RelayMetrics(version: "test"))
        #expect(verdicts.standing(of: IPAddress("203.0.113.7"), config: config, now: now).0 == .listed(verdict: "open"))
        #expect(verdicts.standing(of: IPAddress("203.0.113.8"), config: config, now: now).0 == .clean(verdict: "rcpt_only"))
        #expect(verdicts.standing(of: IPAddress("203.0.113.9"), config: config, now: now).0 == .untested)
        #expect(verdicts.standing(of: IPAddress("10.0.0.9"), config: config, now: now).0 == .notTested)
        // No address from the MTA: nothing to look up or test, and unknown_action holds it.
        #expect(verdicts.standing(of: nil, config: config, now: now).0 == .unidentified)
    }

    @Test func replyTemplates() {
        let tested = Date(timeIntervalSince1970: 1_800_000_000)
        let record = VerdictSummary(verdict: .open, testedAt: tested, expiresAt: tested, acceptedCount: 3, testsRun: 20)
        #expect(HostReplyTemplate.render("{client} {verdict} {tested} {failed}/{run}", client: IPAddress("203.0.113.7"), record: record)
            == "203.0.113.7 open 2027-01-15T08:00:00Z 3/20")
        #expect(HostReplyTemplate.tagValue(record) == "yes; verdict=open; tested=2027-01-15T08:00:00Z; tests=3/20")
        #expect(HostReplyTemplate.tagValue(nil) == "untested")
    }

    /// Each reply says what its verdict rests on: tests, or a listing.
    @Test(arguments: [(VerdictRecord.Source.probe, "3/20 anonymous relay tests accepted"),
                      (.manual, "listed by the administrator"), (.import, "listed by an imported record")])
    func replySaysWhatTheVerdictRestsOn(source: VerdictRecord.Source, evidence: String) {
        let tested = Date(timeIntervalSince1970: 1_800_000_000)
        let record = VerdictSummary(verdict: .open, testedAt: tested, expiresAt: tested, acceptedCount: 3, testsRun: 20, source: source)
        #expect(HostReplyTemplate.render(RelayMilterConfig.defaults.enforcement.rejectText, client: IPAddress("203.0.113.7"), record: record)
            == "Your host 203.0.113.7 was found to be an open relay on 2027-01-15T08:00:00Z (\(evidence)); fix it, then mail postmaster")
    }
}
