import Foundation
import RelayPolicy
import VerdictStore

/// The connect path's view of the open-relay cache: what is known about a
/// host right now, and a background test queued when nothing (fresh) is.
struct HostVerdicts: Sendable {
    let index: VerdictIndex
    let scheduler: ProbeScheduler
    let metrics: RelayMetrics

    func standing(of address: IPAddress?, config: RelayMilterConfig, now: Date = Date()) -> (HostStanding, VerdictSummary?) {
        guard let address else { return (.notTested, nil) }
        let lookup = index.lookup(address, now: now)
        switch lookup {
        case .hit: metrics.cacheLookup("hit")
        case .expired: metrics.cacheLookup("expired")
        case .miss: metrics.cacheLookup("miss")
        }
        switch lookup {
        case .hit(let record):
            let bad = config.enforcement.badVerdicts.contains(record.verdict)
            return (bad ? .listed(verdict: record.verdict) : .clean(verdict: record.verdict), record)
        case .expired, .miss:
            switch scheduler.consider(address, config: config) {
            case .queued, .alreadyPending, .queueFull: return (.untested, nil)
            case .excluded, .disabled: return (.notTested, nil)
            }
        }
    }
}

/// The texts that go with a host decision.
enum HostReplyTemplate {
    static func render(_ template: String, client: IPAddress?, record: VerdictSummary?) -> String {
        Placeholders.fill(template) { name in
            switch name {
            case "client": client.map { "\($0)" } ?? "unknown"
            case "verdict": record?.verdict ?? "untested"
            case "tested": record.map { timestamp($0.testedAt) } ?? "never"
            case "failed": "\(record?.acceptedCount ?? 0)"
            case "run": "\(record?.testsRun ?? 0)"
            default: nil
            }
        }
    }

    /// `yes; verdict=open; tested=2026-11-29T17:00:00Z; tests=3/20`, or `untested`.
    static func tagValue(_ record: VerdictSummary?) -> String {
        guard let record else { return "untested" }
        return "yes; verdict=\(record.verdict); tested=\(timestamp(record.testedAt)); tests=\(record.acceptedCount)/\(record.testsRun)"
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon).timeZone(separator: .omitted))
    }
}
