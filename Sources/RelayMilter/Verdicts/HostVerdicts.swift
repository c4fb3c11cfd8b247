import Foundation
import RelayConfig
import RelayPolicy
import RelayProbe
import VerdictStore

/// The session's view of the open-relay cache: what is known about a host
/// right now, and a background test queued when nothing (fresh) is and the
/// client turns out not to be authenticated; likewise for the configured DNS
/// blocklists.
struct HostVerdicts: Sendable {
    let index: VerdictIndex
    let scheduler: ProbeScheduler
    let metrics: RelayMetrics
    /// Nil when no DNS server could be found at start (then no list is asked).
    var dnsbl: DNSBLLookups? = nil

    /// The first configured blocklist whose cached answer lists the host.
    func dnsblListing(of address: IPAddress?, config: RelayMilterConfig) -> DNSBLListing? {
        dnsbl?.listing(of: address, config: config)
    }

    /// What the cache says of the host; with nothing fresh, `.untested` if a
    /// test may be run (`requestTest` queues it), `.notTested` if not.
    func standing(of address: IPAddress?, config: RelayMilterConfig, now: Date = Date()) -> (HostStanding, VerdictSummary?) {
        guard let address else { return (.unidentified, nil) }
        let lookup = index.lookup(address, now: now)
        switch lookup {
        case .hit: metrics.cacheLookup("hit")
        case .expired: metrics.cacheLookup("expired")
        case .miss: metrics.cacheLookup("miss")
        }
        switch lookup {
        case .hit(let record):
            let bad = config.enforcement.badVerdicts.contains(record.verdict)
            return (bad ? .listed(verdict: record.verdict.rawValue) : .clean(verdict: record.verdict.rawValue), record)
        case .expired, .miss:
            return (scheduler.mayTest(address, config: config) ? .untested : .notTested, nil)
        }
    }

    /// Queues a test of an `.untested` host. Called at the connection's first
    /// MAIL, where the MTA first says whether the client authenticated (an
    /// authenticated client is a user, its address often a home line, never a
    /// relay to test), or at its end if it had no MAIL.
    func requestTest(of address: IPAddress, config: RelayMilterConfig) {
        _ = scheduler.consider(address, config: config)
    }
}

/// The texts that go with a DNSBL decision.
enum DNSBLReplyTemplate {
    static func render(_ template: String, client: IPAddress?, listing: DNSBLListing) -> String {
        Placeholders.fill(template) { name in
            switch name {
            case "client": client.map { "\($0)" } ?? "unknown"
            case "zone": listing.zone
            case "text": listing.text
            default: nil
            }
        }
    }

    /// `bl.example.org; <the list's text>`
    static func tagValue(_ listing: DNSBLListing) -> String {
        "\(listing.zone); \(listing.text)"
    }
}

/// The texts that go with a host decision.
enum HostReplyTemplate {
    static func render(_ template: String, client: IPAddress?, record: VerdictSummary?) -> String {
        Placeholders.fill(template) { name in
            switch name {
            case "client": client.map { "\($0)" } ?? "unknown"
            case "verdict": record?.verdict.rawValue ?? "untested"
            case "tested": record.map { timestamp($0.testedAt) } ?? "never"
            case "failed": "\(record?.acceptedCount ?? 0)"
            case "run": "\(record?.testsRun ?? 0)"
            case "evidence": record?.evidence ?? "never tested"
            default: nil
            }
        }
    }

    /// `yes; verdict=open; tested=2026-11-29T17:00:00Z; tests=3/20`, or `untested`.
    static func tagValue(_ record: VerdictSummary?) -> String {
        guard let record else { return "untested" }
        return "yes; verdict=\(record.verdict.rawValue); tested=\(timestamp(record.testedAt)); tests=\(record.acceptedCount)/\(record.testsRun)"
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon).timeZone(separator: .omitted))
    }
}
