import Foundation
import RelayPolicy
import VerdictStore

/// The open relays in the verdict cache as an rbldnsd `ip4set` dataset, so
/// that any MTA can use them as a DNS blocklist (`reject_rbl_client` in
/// Postfix, `FEATURE(dnsbl)` in Sendmail) through rbldnsd.
///
/// Every IPv4 host whose unexpired verdict is one of the bad verdicts is
/// listed, answering `127.0.0.2` with a TXT naming the verdict and the test
/// date. IPv6 hosts are left out: `ip4set` holds IPv4 only.
public enum RbldnsdZone {
    /// The A record a listing answers with, as most DNSBLs do.
    public static let listedAnswer = "127.0.0.2"

    public static func render(_ hosts: [(address: IPAddress, summary: VerdictSummary)], badVerdicts: Set<String>,
                              ttlSeconds: Int, now: Date) -> String {
        let listed = hosts
            .compactMap { host -> (UInt32, VerdictSummary)? in
                guard case .v4(let key) = host.address, badVerdicts.contains(host.summary.verdict),
                      !host.summary.isExpired(at: now) else { return nil }
                return (key, host.summary)
            }
            .sorted { $0.0 < $1.0 }
        var lines = [
            "# relay-milter: hosts found to be open relays, \(listed.count) listed, written \(HostReplyTemplate.timestamp(now)).",
            "# An rbldnsd ip4set dataset; IPv6 hosts are not in it.",
            "$TTL \(ttlSeconds)",
        ]
        for (key, summary) in listed {
            lines.append("\(IPAddress.v4(key)) :\(listedAnswer):\(text(for: summary))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The verdict records of the database, as `render` takes them.
    public static func hosts(_ records: [VerdictRecord]) -> [(address: IPAddress, summary: VerdictSummary)] {
        records.compactMap { record in IPAddress(record.host).map { ($0, record.summary) } }
    }

    /// `open relay (verdict open, 20/20 relay tests accepted), tested 2026-11-30`:
    /// one line, no characters rbldnsd would read as syntax.
    static func text(for summary: VerdictSummary) -> String {
        let day = String(HostReplyTemplate.timestamp(summary.testedAt).prefix(10))
        let accepted = summary.testsRun > 0 ? ", \(summary.acceptedCount)/\(summary.testsRun) relay tests accepted" : ""
        let raw = "open relay (verdict \(summary.verdict)\(accepted)), tested \(day)"
        return String(raw.map { $0.isNewline || $0 == "$" ? " " : $0 })
    }
}
