import Foundation
import Logging
import NIOPosix
import RelayConfig
import SharedVerdictStore
import VerdictStore

/// `relay-milter stats --fleet`: the decisions of every instance sharing the
/// PostgreSQL database, from the rollups each writes there once a minute.
public struct FleetStatsReport: Codable, Sendable, Equatable {
    public struct Instance: Codable, Sendable, Equatable {
        public let name: String
        public let decisions: Int
        public let refused: Int
        /// The start of the latest minute (or hour) it wrote, seconds since 1970:
        /// an instance that stopped writing shows here.
        public let lastPeriodStart: Int
    }

    public let sinceSeconds: Int
    /// All instances together, by action and reason, most frequent first.
    public let window: [StatsReport.Count]
    public let instances: [Instance]

    /// Minute rollups cover the last day; beyond it, hours.
    static func granularity(sinceSeconds: Int) -> RollupRow.Granularity {
        sinceSeconds <= 86400 ? .minute : .hour
    }

    static func build(_ rows: [(instance: String, row: RollupRow)], sinceSeconds: Int) -> FleetStatsReport {
        var totals: [String: [String: Int]] = [:] // action -> reason -> count
        var byInstance: [String: (decisions: Int, refused: Int, last: Int)] = [:]
        for (instance, row) in rows {
            totals[row.action, default: [:]][row.reason, default: 0] += row.count
            let periodSeconds = row.granularity == .minute ? 60 : 3600
            var entry = byInstance[instance] ?? (0, 0, 0)
            entry.decisions += row.count
            if row.action == "reject" || row.action == "tempfail" { entry.refused += row.count }
            entry.last = max(entry.last, row.period * periodSeconds)
            byInstance[instance] = entry
        }
        let window = totals.flatMap { action, reasons in
            reasons.map { StatsReport.Count(action: action, reason: $0.key, count: $0.value) }
        }.sorted { ($0.count, $1.action, $1.reason) > ($1.count, $0.action, $0.reason) }
        let instances = byInstance.map { Instance(name: $0.key, decisions: $0.value.decisions, refused: $0.value.refused, lastPeriodStart: $0.value.last) }
            .sorted { $0.name < $1.name }
        return FleetStatsReport(sinceSeconds: sinceSeconds, window: window, instances: instances)
    }

    public var text: String {
        var out = "fleet statistics for the last \(StatsFormatter.duration(sinceSeconds)) (\(instances.count) instance(s) wrote rollups)\n\n"
        out += "decisions by action and reason, all instances:\n"
        if window.isEmpty { out += "  (none)\n" }
        for count in window {
            out += "  " + count.action.padding(9) + count.reason.padding(28) + String(count.count).leftPadding(8) + "\n"
        }
        out += "\nper instance:                              decisions  refused  latest rollup\n"
        if instances.isEmpty { out += "  (none)\n" }
        for instance in instances {
            out += "  " + instance.name.padding(40) + String(instance.decisions).leftPadding(10)
            out += String(instance.refused).leftPadding(9) + "  "
            out += HostReplyTemplate.timestamp(Date(timeIntervalSince1970: TimeInterval(instance.lastPeriodStart))) + "\n"
        }
        return out
    }
}

public enum FleetStatsClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads the shared rollups; blocks the calling thread (a CLI's main thread).
    public static func fetch(config: RelayMilterConfig, since: String) throws(Failure) -> FleetStatsReport {
        guard let seconds = try? DurationText.seconds(since), seconds >= 60 else {
            throw Failure(description: "--since \"\(since)\" is not a duration from a minute to \(DurationText.text(DurationText.maximumSeconds)), such as 1h, 24h or 7d")
        }
        guard config.cache.backend == .postgresql else {
            throw Failure(description: "--fleet needs [cache] backend = \"postgresql\" in the config")
        }
        let shared = config.cache.postgresql
        let granularity = FleetStatsReport.granularity(sinceSeconds: seconds)
        let periodSeconds = granularity == .minute ? 60 : 3600
        let firstPeriod = (Int(Date().timeIntervalSince1970) - seconds) / periodSeconds + 1
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        do {
            let rows = try shared.withCommandConnection(on: group) { store in
                try await store.fleetRollups(granularity, since: firstPeriod).map { FleetRow(instance: $0.instance, row: $0.row) }
            }
            return FleetStatsReport.build(rows.map { ($0.instance, $0.row) }, sinceSeconds: seconds)
        } catch {
            throw Failure(description: "cannot read the fleet's rollups from \(shared.host):\(shared.port)/\(shared.database): \(String(reflecting: error))")
        }
    }

    /// A row and its instance, Sendable across the future.
    private struct FleetRow: Sendable {
        let instance: String
        let row: RollupRow
    }

    public static func json(_ report: FleetStatsReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(report)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }
}
