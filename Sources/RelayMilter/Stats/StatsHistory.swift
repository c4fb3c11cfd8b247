import Foundation
import Logging
import VerdictStore

/// Keeps `relay-milter stats` history across restarts: reads the rollups
/// back at start, and adds the counts to the database's minute and hour rows
/// every `writeInterval`, so an unclean stop loses at most that much.
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

    /// How often counts reach the database. The database adds each write to
    /// its rows, so the current minute is written in parts as it goes: a
    /// kill -9 or a crash loses at most this much of the statistics.
    static let writeInterval: Duration = .seconds(10)

    /// Writes the counts not written yet every `writeInterval`, until cancelled.
    func writeContinually() async {
        var lastPrunedHour = Self.currentMinute() / 60
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.writeInterval)
            // Even with no counts: each write first heals the database file
            // (VerdictDatabase), so this is what bounds how long damage waits.
            database.addRollups(stats.takeUnwritten())
            let minute = Self.currentMinute()
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
        database.addRollups(stats.takeUnwritten())
        database.finish()
    }
}
