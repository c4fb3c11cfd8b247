import Foundation
import RelayPolicy
import RelayProbe
import VerdictStore

/// The open relays in the verdict cache as an rbldnsd dataset, so that any
/// MTA can use them as a DNS blocklist (`reject_rbl_client` in Postfix,
/// `FEATURE(dnsbl)` in Sendmail) through rbldnsd.
///
/// Every host of the dataset's address family whose unexpired verdict is one
/// of the bad verdicts is listed, answering its verdict's `zoneAnswer`
/// (127.0.0.2) with a TXT naming the verdict and the test date. rbldnsd keeps the families in datasets of
/// different types (`ip4set` holds IPv4 only, `ip6trie` IPv6), served under
/// one zone name side by side; their lines are written alike.
public enum RbldnsdZone {
    /// An rbldnsd dataset type, and the address family it holds.
    public enum Dataset: String, Sendable, CaseIterable {
        case ip4set
        case ip6trie

        func holds(_ address: IPAddress) -> Bool {
            switch (self, address) {
            case (.ip4set, .v4), (.ip6trie, .v6): true
            default: false
            }
        }
    }

    public static func render(_ hosts: [(address: IPAddress, summary: VerdictSummary)], dataset: Dataset = .ip4set,
                              badVerdicts: Set<ProbeVerdict>, ttlSeconds: Int, now: Date) -> String {
        let listed = hosts
            .filter { host in
                dataset.holds(host.address) && !host.summary.isExpired(at: now) && badVerdicts.contains(host.summary.verdict)
            }
            .sorted { order($0.address) < order($1.address) }
        var lines = [
            "# relay-milter: hosts found to be open relays, \(listed.count) listed, written \(HostReplyTemplate.timestamp(now)).",
            "# An rbldnsd \(dataset.rawValue) dataset: \(dataset == .ip4set ? "IPv4" : "IPv6") hosts only.",
            "$TTL \(ttlSeconds)",
        ]
        for (address, summary) in listed {
            lines.append("\(address) :\(summary.verdict.zoneAnswer):\(text(for: summary))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Numeric order, as rbldnsd would list them (a dataset holds one family).
    private static func order(_ address: IPAddress) -> UInt128 {
        switch address {
        case .v4(let value): UInt128(value)
        case .v6(let value): value
        }
    }

    /// The verdict records of the database, as `render` takes them.
    public static func hosts(_ records: [VerdictRecord]) -> [(address: IPAddress, summary: VerdictSummary)] {
        records.compactMap { record in
            guard let address = IPAddress(record.host), let summary = record.summary else { return nil }
            return (address, summary)
        }
    }

    /// `open relay (verdict open, 20/20 relay tests accepted), tested 2026-11-30`,
    /// `relay attempt caught by a trap (verdict trapped), seen 2026-11-30`:
    /// one line, no characters rbldnsd would read as syntax.
    static func text(for summary: VerdictSummary) -> String {
        let day = String(HostReplyTemplate.timestamp(summary.testedAt).prefix(10))
        let raw: String
        if summary.verdict == .trapped {
            raw = "relay attempt caught by a trap (verdict trapped), seen \(day)"
        } else {
            let accepted = summary.testsRun > 0 ? ", \(summary.acceptedCount)/\(summary.testsRun) relay tests accepted" : ""
            raw = "open relay (verdict \(summary.verdict.rawValue)\(accepted)), tested \(day)"
        }
        return String(raw.map { $0.isNewline || $0 == "$" ? " " : $0 })
    }
}
