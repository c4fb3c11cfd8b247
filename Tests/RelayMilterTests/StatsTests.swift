import Foundation
@testable import RelayMilter
import RelayPolicy
import Testing
import VerdictStore

struct TopKTests {
    @Test func staysBoundedAndKeepsTheHeavyHitters() {
        var top = TopK<String>(capacity: 100)
        // 100 k distinct clients once each, and three that come back more often
        // than total/capacity (~1,090) times: those the algorithm guarantees to keep.
        for i in 0..<100_000 {
            top.add("client-\(i)")
            if i % 20 == 0 { top.add("heavy-a") }
            if i % 40 == 0 { top.add("heavy-b") }
            if i % 80 == 0 { top.add("heavy-c") }
        }
        #expect(top.count == 100)
        #expect(top.top(3).map(\.key) == ["heavy-a", "heavy-b", "heavy-c"])
        let a = top.top(1)[0]
        #expect(a.count >= 5000 && a.count - a.overcount <= 5000)
    }

    @Test func matchesAPlainScanOfTheLeastCounted() {
        // The heap against the algorithm written out naively, on a skewed stream
        // with many ties: same kept keys, counts and overcounts.
        var top = TopK<Int>(capacity: 8)
        var naive: [Int: (count: Int, overcount: Int)] = [:]
        var state: UInt64 = 12345
        for _ in 0..<5_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let key = Int(state >> 33) % 40 < 20 ? Int(state >> 40) % 4 : Int(state >> 40) % 200
            top.add(key)
            if let current = naive[key] {
                naive[key] = (current.count + 1, current.overcount)
            } else if naive.count < 8 {
                naive[key] = (1, 0)
            } else {
                let least = naive.values.map(\.count).min()!
                // Any least counted key may go: follow the one the heap evicted,
                // and check that it was one of the least counted.
                let kept = Set(top.top(8).map(\.key))
                let evicted = naive.keys.first { !kept.contains($0) }!
                #expect(naive[evicted]!.count == least)
                naive.removeValue(forKey: evicted)
                naive[key] = (least + 1, least)
            }
        }
        let entries = top.top(8)
        #expect(entries.count == 8)
        for entry in entries {
            #expect(naive[entry.key]?.count == entry.count)
            #expect(naive[entry.key]?.overcount == entry.overcount)
        }
        #expect(entries.map(\.count) == entries.map(\.count).sorted(by: >))
    }

    @Test func exactWhileUnderCapacity() {
        var top = TopK<String>(capacity: 10)
        for (key, n) in [("x", 5), ("y", 3), ("z", 1)] { top.add(key, n) }
        #expect(top.top(10) == [.init(key: "x", count: 5, overcount: 0), .init(key: "y", count: 3, overcount: 0),
                                .init(key: "z", count: 1, overcount: 0)])
    }
}

struct StatsCollectorTests {
    @Test func countsWindowsAndTopLists() {
        let stats = StatsCollector()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let client = IPAddress("203.0.113.9")
        for i in 0..<5 {
            stats.record(action: .reject, reason: .denied, client: client, recipient: "<v\(i)@Elsewhere.Example>", at: now)
        }
        stats.record(action: .accept, reason: .localRecipient, client: client, recipient: "<bob@example.test>", at: now)
        stats.record(action: .reject, reason: .denied, client: IPAddress("203.0.113.10"), recipient: "<x@other.example>",
                     at: now.addingTimeInterval(-7200))
        let hour = stats.report(sinceSeconds: 3600, now: now)
        #expect(hour.window == [.init(action: "reject", reason: "relay.denied", count: 5), .init(action: "accept", reason: "relay.local_recipient", count: 1)])
        #expect(hour.refusedPerHour == [5])
        #expect(hour.ratesPerMinute.lastMinute == 6)
        #expect(hour.topClients.map(\.key) == ["203.0.113.9", "203.0.113.10"])
        #expect(hour.topNetworks == [.init(key: "203.0.113.0/24", count: 6, overcount: 0)])
        #expect(hour.topDomains.map(\.key) == ["elsewhere.example", "other.example"])
        let day = stats.report(sinceSeconds: 86400, now: now)
        #expect(day.refusedPerHour.count == 24)
        #expect(day.refusedPerHour.suffix(3) == [1, 0, 5])
        #expect(day.window.first { $0.reason == "relay.denied" }?.count == 6)
    }

    /// A recipient the MTA refused itself is counted, shown apart: no "accept" of ours.
    @Test func whatTheMTARefusedItselfIsObservedNotDecided() {
        let stats = StatsCollector()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        stats.record(action: .accept, reason: .mtaRejected, client: IPAddress("203.0.113.9"), recipient: "<a@b.example>", at: now)
        stats.record(action: .reject, reason: .denied, client: IPAddress("203.0.113.9"), recipient: "<a@b.example>", at: now)
        let text = StatsFormatter.text(stats.report(sinceSeconds: 3600, now: now))
        let decisions = text.components(separatedBy: "observed, not decided")[0]
        #expect(decisions.contains("reject   relay.denied") && !decisions.contains("relay.mta_rejected"))
        #expect(text.contains("observed, not decided (the MTA refused these recipients itself):\n" + String(repeating: " ", count: 11) + "relay.mta_rejected"))
    }

    /// A trap process's report: its attempts per hour and its top lists,
    /// which stats_detail = false withholds as it does the others.
    @Test func aTrapsAttemptsAreShownUnlessWithheld() {
        var report = StatsCollector().report(sinceSeconds: 7200, now: Date(timeIntervalSince1970: 1_800_000_000))
        report.trap = StatsReport.Trap(attempts: 3, perHour: [1, 2], topClients: [.init(key: "192.0.2.9", count: 3, overcount: 0)],
                                       topDomains: [.init(key: "victim.example", count: 3, overcount: 0)])
        let text = StatsFormatter.text(report)
        #expect(text.contains("trap: 3 relay attempt(s) taken in the window\ntrapped per hour (oldest first, max 2): ▄█\n"))
        #expect(text.contains("top trapped clients:\n  192.0.2.9") && text.contains("top trapped target domains:\n  victim.example"))
        report.topListsWithheld = true
        #expect(!StatsFormatter.text(report).contains("192.0.2.9"))
    }

    @Test func sparkline() {
        #expect(StatsFormatter.sparkline([0, 1, 2, 4, 8]) == "▁▁▂▄█")
        #expect(StatsFormatter.sparkline([0, 0]) == "▁▁")
    }
}

struct StatsHistoryTests {
    @Test func unwrittenCountsAreHandedOverOnceAsMinuteAndHourRows() {
        let stats = StatsCollector()
        let now = Date(timeIntervalSince1970: 1_800_000_000) // minute 30_000_000
        let minute = 30_000_000
        stats.record(action: .reject, reason: .denied, client: nil, recipient: nil, at: now.addingTimeInterval(-60))
        stats.record(action: .reject, reason: .denied, client: nil, recipient: nil, at: now)
        stats.record(action: .reject, reason: .denied, client: nil, recipient: nil, at: now)
        #expect(stats.takeUnwritten() == [
            RollupRow(granularity: .minute, period: minute - 1, action: "reject", reason: "relay.denied", count: 1),
            RollupRow(granularity: .hour, period: (minute - 1) / 60, action: "reject", reason: "relay.denied", count: 1),
            RollupRow(granularity: .minute, period: minute, action: "reject", reason: "relay.denied", count: 2),
            RollupRow(granularity: .hour, period: minute / 60, action: "reject", reason: "relay.denied", count: 2),
        ])
        #expect(stats.takeUnwritten().isEmpty)
        // Later in the same minute: only what came since, for the database to add.
        stats.record(action: .reject, reason: .denied, client: nil, recipient: nil, at: now.addingTimeInterval(10))
        #expect(stats.takeUnwritten().map(\.count) == [1, 1])
    }

    @Test func loadedHistoryCountsInReportsBeyondADay() {
        let stats = StatsCollector(retentionHours: 7 * 24)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let hour = 30_000_000 / 60
        stats.load([
            RollupRow(granularity: .hour, period: hour - 48, action: "reject", reason: "relay.denied", count: 7),
            RollupRow(granularity: .minute, period: 30_000_000 - 5, action: "reject", reason: "relay.routed_address", count: 2),
            RollupRow(granularity: .hour, period: hour, action: "reject", reason: "relay.routed_address", count: 2),
        ])
        let week = stats.report(sinceSeconds: 7 * 86400, now: now)
        #expect(week.window.first { $0.reason == "relay.denied" }?.count == 7)
        #expect(week.refusedPerHour.count == 168)
        #expect(week.refusedPerHour.reduce(0, +) == 9)
        let hourReport = stats.report(sinceSeconds: 3600, now: now)
        #expect(hourReport.window == [.init(action: "reject", reason: "relay.routed_address", count: 2)])
    }
}
