import Foundation
import Logging
import VerdictStore

/// Keeps `relay-milter stats` history across restarts: reads the rollups
/// back at start, and writes each finished minute (and its hour) to the
/// database, so an unclean stop loses at most the current minute.
struct StatsHistory: Sendable {
    let stats: StatsCollector
    let database: VerdictDatabase
    let logger: Logger

    static func currentMinute(_ now: Date = Date()) -> Int { Int(now.timeIntervalSince1970 / 60) }

    func load() {
        let minute = Self.currentMinute()
        prune(at: minute)
        do {
            let rows = try database.withStore { store in
                try store.rollups(.minute, since: minute - StatsCollector.retainedMinutes)
                    + store.rollups(.hour, since: minute / 60 - stats.retentionHours)
            } ?? []
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
            database.addRollups(stats.takeUnwritten(through: minute - 1))
            if minute / 60 != lastPrunedHour {
                lastPrunedHour = minute / 60
                prune(at: minute)
            }
        }
    }

    /// Drops rollups older than what `stats` shows (at start, then hourly).
    func prune(at minute: Int = Self.currentMinute()) {
        _ = try? database.withStore { store in
            try store.pruneRollups(.minute, before: minute - StatsCollector.retainedMinutes)
            try store.pruneRollups(.hour, before: minute / 60 - stats.retentionHours)
        }
    }

    /// Writes everything not yet written, the current minute included, and
    /// waits for it (at a clean stop).
    func writeAll() {
        database.addRollups(stats.takeUnwritten(through: Int.max))
        database.finish()
    }
}
