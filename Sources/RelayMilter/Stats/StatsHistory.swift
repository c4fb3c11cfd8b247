import Foundation
import Logging
import VerdictStore

/// Keeps `relay-milter stats` history across restarts: reads the rollups
/// back at start, and writes each finished minute (and its hour) to the
/// database, so an unclean stop loses at most the current minute.
struct StatsHistory: Sendable {
    let stats: StatsCollector
    let store: VerdictStore
    let health: CacheWriteHealth
    let logger: Logger

    static func currentMinute(_ now: Date = Date()) -> Int { Int(now.timeIntervalSince1970 / 60) }

    func load() {
        let minute = Self.currentMinute()
        do {
            try store.pruneRollups(.minute, before: minute - StatsCollector.retainedMinutes)
            try store.pruneRollups(.hour, before: minute / 60 - stats.retentionHours)
            let rows = try store.rollups(.minute, since: minute - StatsCollector.retainedMinutes)
                + store.rollups(.hour, since: minute / 60 - stats.retentionHours)
            stats.load(rows)
            logger.info("statistics history loaded", metadata: ["stats.rows": "\(rows.count)"])
        } catch {
            logger.error("cannot read statistics history; starting empty", metadata: ["error": "\(error)"])
        }
    }

    /// Writes finished minutes as they end, until cancelled.
    func writeEveryMinute() async {
        var lastPrunedHour = Self.currentMinute() / 60
        while !Task.isCancelled {
            let now = Date().timeIntervalSince1970
            let untilNextMinute = 60 - now.truncatingRemainder(dividingBy: 60) + 0.5
            try? await Task.sleep(for: .milliseconds(Int(untilNextMinute * 1000)))
            let minute = Self.currentMinute()
            // Rows that fail to write are lost from the history (the live counts stay).
            store.addRollupsInBackground(stats.takeUnwritten(through: minute - 1)) { [health] error in
                health.record(error, writing: "statistics")
            }
            if minute / 60 != lastPrunedHour {
                lastPrunedHour = minute / 60
                try? store.pruneRollups(.minute, before: minute - StatsCollector.retainedMinutes)
                try? store.pruneRollups(.hour, before: minute / 60 - stats.retentionHours)
            }
        }
    }

    /// Writes everything not yet written, the current minute included (at a clean stop).
    func writeAll() {
        do {
            try store.addRollups(stats.takeUnwritten(through: Int.max))
        } catch {
            logger.error("cannot write statistics history at stop", metadata: ["error": "\(error)"])
        }
    }
}
