import Foundation
import RelayPolicy
import NIOConcurrencyHelpers
import VerdictStore

/// What `relay-milter stats` shows, gathered in memory as decisions are made:
/// per-minute counts by action and reason for the last day, per-hour counts
/// for the retention period (both written to the database every 10 seconds and
/// read back at start, so history survives restarts), and bounded
/// top-N lists of refused clients, their /24 (or /48) networks and the
/// destination domains they tried. Recording is one short lock on the
/// callback path; no I/O.
public final class StatsCollector: Sendable {
    static let topCapacity = 100
    static let retainedMinutes = 24 * 60

    /// What a count is of: no strings, so counting allocates nothing.
    struct Key: Hashable, Sendable {
        let action: PolicyAction
        let reason: ReasonCode
        var isRefusal: Bool { action == .reject || action == .tempfail }
    }

    private struct State {
        /// minute since the epoch -> counts, for the last day
        var minutes: [Int: [Key: Int]] = [:]
        /// hour since the epoch -> counts, for `retentionHours`
        var hours: [Int: [Key: Int]] = [:]
        /// Counts not yet written to the database, by minute.
        var unwritten: [Int: [Key: Int]] = [:]
        var clients = TopK<String>(capacity: StatsCollector.topCapacity)
        var networks = TopK<String>(capacity: StatsCollector.topCapacity)
        var domains = TopK<String>(capacity: StatsCollector.topCapacity)
        var started = Date()
    }

    private let state = NIOLockedValueBox(State())
    let retentionHours: Int

    public init(retentionHours: Int = 30 * 24) {
        self.retentionHours = retentionHours
    }

    /// Counts one decision; refusals also feed the top lists.
    public func record(action: PolicyAction, reason: ReasonCode, client: IPAddress?, recipient: String?, at now: Date = Date()) {
        let key = Key(action: action, reason: reason)
        let minute = Int(now.timeIntervalSince1970 / 60)
        let refused = key.isRefusal
        let domain = refused ? recipient.flatMap(Self.domain(of:)) : nil
        state.withLockedValue { state in
            state.minutes[minute, default: [:]][key, default: 0] += 1
            state.hours[minute / 60, default: [:]][key, default: 0] += 1
            state.unwritten[minute, default: [:]][key, default: 0] += 1
            if refused, let client {
                state.clients.add("\(client)")
                state.networks.add(ProbeScheduler.network(of: client).description)
            }
            if let domain { state.domains.add(domain) }
            if state.minutes.count > Self.retainedMinutes + 5 {
                let oldest = minute - Self.retainedMinutes
                state.minutes = state.minutes.filter { $0.key > oldest }
                let oldestHour = minute / 60 - retentionHours
                state.hours = state.hours.filter { $0.key > oldestHour }
            }
        }
    }

    /// Puts history read back from the database in place (at start).
    public func load(_ rows: [RollupRow]) {
        state.withLockedValue { state in
            for row in rows {
                // Rows from another version with codes this one does not know are skipped.
                guard let action = PolicyAction(rawValue: row.action), let reason = ReasonCode(rawValue: row.reason) else { continue }
                let key = Key(action: action, reason: reason)
                switch row.granularity {
                case .minute: state.minutes[row.period, default: [:]][key, default: 0] += row.count
                case .hour: state.hours[row.period, default: [:]][key, default: 0] += row.count
                }
            }
        }
    }

    /// Hands over the counts not written yet, as minute and hour rollup rows
    /// (the database adds them to what it has, so a minute may come in parts).
    public func takeUnwritten() -> [RollupRow] {
        let taken = state.withLockedValue { state -> [Int: [Key: Int]] in
            defer { state.unwritten = [:] }
            return state.unwritten
        }
        var rows: [RollupRow] = []
        for (period, counts) in taken.sorted(by: { $0.key < $1.key }) {
            for (key, count) in counts {
                let (action, reason) = (key.action.rawValue, key.reason.rawValue)
                rows.append(RollupRow(granularity: .minute, period: period, action: action, reason: reason, count: count))
                rows.append(RollupRow(granularity: .hour, period: period / 60, action: action, reason: reason, count: count))
            }
        }
        return rows
    }

    static func domain(of recipient: String) -> String? {
        guard let address = try? MailAddress(parsing: recipient), case .name(let name)? = address.domain else { return nil }
        return name.text
    }

    /// A report over the last `seconds` (at most a day), as JSON-ready values.
    public func report(sinceSeconds seconds: Int, now: Date = Date(), top n: Int = 10) -> StatsReport {
        let nowMinute = Int(now.timeIntervalSince1970 / 60)
        let window = min(seconds / 60, retentionHours * 60)
        return state.withLockedValue { state in
            func sum(lastMinutes count: Int) -> Int {
                (nowMinute - count + 1...nowMinute).reduce(0) { total, minute in
                    total + (state.minutes[minute] ?? [:]).values.reduce(0, +)
                }
            }
            var inWindow: [Key: Int] = [:]
            let hours = max(1, (window + 59) / 60)
            let perHour: [Int]
            if window <= Self.retainedMinutes {
                for minute in (nowMinute - window + 1)...nowMinute {
                    for (key, count) in state.minutes[minute] ?? [:] { inWindow[key, default: 0] += count }
                }
                perHour = (0..<hours).reversed().map { hoursAgo -> Int in
                    let end = nowMinute - hoursAgo * 60
                    return (end - 59...end).reduce(0) { $0 + (state.minutes[$1] ?? [:]).filter { $0.key.isRefusal }.values.reduce(0, +) }
                }
            } else {
                // Beyond a day, whole hours from the hourly rollups.
                let nowHour = nowMinute / 60
                for hour in (nowHour - hours + 1)...nowHour {
                    for (key, count) in state.hours[hour] ?? [:] { inWindow[key, default: 0] += count }
                }
                perHour = (0..<hours).reversed().map { hoursAgo in
                    (state.hours[nowHour - hoursAgo] ?? [:]).filter { $0.key.isRefusal }.values.reduce(0, +)
                }
            }
            return StatsReport(
                sinceSeconds: window * 60,
                uptimeSeconds: Int(now.timeIntervalSince(state.started)),
                window: inWindow.map { StatsReport.Count(action: $0.key.action.rawValue, reason: $0.key.reason.rawValue, count: $0.value) }
                    .sorted { $0.count > $1.count },
                ratesPerMinute: StatsReport.Rates(
                    lastMinute: Double(sum(lastMinutes: 1)), lastHour: Double(sum(lastMinutes: 60)) / 60,
                    lastDay: Double(sum(lastMinutes: Self.retainedMinutes)) / Double(Self.retainedMinutes)
                ),
                refusedPerHour: perHour,
                topClients: state.clients.top(n).map { .init(key: $0.key, count: $0.count, overcount: $0.overcount) },
                topNetworks: state.networks.top(n).map { .init(key: $0.key, count: $0.count, overcount: $0.overcount) },
                topDomains: state.domains.top(n).map { .init(key: $0.key, count: $0.count, overcount: $0.overcount) }
            )
        }
    }

}

/// The `/stats` answer and `relay-milter stats --json` output.
public struct StatsReport: Codable, Sendable, Equatable {
    public struct Count: Codable, Sendable, Equatable {
        public let action: String
        public let reason: String
        public let count: Int
    }

    public struct Rates: Codable, Sendable, Equatable {
        public let lastMinute: Double
        public let lastHour: Double
        public let lastDay: Double
    }

    public struct Ranked: Codable, Sendable, Equatable {
        public let key: String
        public let count: Int
        public let overcount: Int
    }

    /// A trap's relay attempts in the window, from its evidence (exact counts).
    public struct Trap: Codable, Sendable, Equatable {
        public let attempts: Int
        /// Per hour, oldest first.
        public let perHour: [Int]
        /// Empty when the top lists are withheld.
        public let topClients: [Ranked]
        public let topDomains: [Ranked]
    }

    public let sinceSeconds: Int
    public let uptimeSeconds: Int
    /// Decisions in the window, by action and reason.
    public let window: [Count]
    /// Decisions per minute, averaged over the last minute, hour and day.
    public let ratesPerMinute: Rates
    /// Refusals per hour across the window, oldest first (the sparkline).
    public let refusedPerHour: [Int]
    /// Since the daemon started, bounded to the 100 most frequent of each.
    public let topClients: [Ranked]
    public let topNetworks: [Ranked]
    public let topDomains: [Ranked]
    /// Hosts in the open-relay verdict cache, by verdict (filled in by the daemon).
    public var cacheByVerdict: [String: Int] = [:]
    /// Registered tests started in the window, by state (`delivered`,
    /// `undelivered`, `refused`, `waiting`, `lapsed`); absent when `[registered]` is off.
    public var registeredTests: [String: Int]?
    /// What a trap listener recorded in the window; absent when `[trap]` is off.
    public var trap: Trap?
    /// True when the listener does not serve the top lists (`[metrics]
    /// stats_detail = false`); absent from older daemons, which always did.
    public var topListsWithheld: Bool?
}
