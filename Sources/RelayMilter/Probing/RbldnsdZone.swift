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

    public static func render(_ records: [VerdictRecord], badVerdicts: Set<String>, ttlSeconds: Int, now: Date) -> String {
        let listed = records
            .filter { badVerdicts.contains($0.verdict) && !$0.isExpired(at: now) }
            .compactMap { record -> (IPAddress, VerdictRecord)? in
                guard let address = IPAddress(record.host), case .v4 = address else { return nil }
                return (address, record)
            }
            .sorted { $0.1.host < $1.1.host }
        var lines = [
            "# relay-milter: hosts found to be open relays, \(listed.count) listed, written \(HostReplyTemplate.timestamp(now)).",
            "# An rbldnsd ip4set dataset; IPv6 hosts are not in it.",
            "$TTL \(ttlSeconds)",
        ]
        for (address, record) in listed {
            lines.append("\(address) :\(listedAnswer):\(text(for: record))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `open relay (verdict open, 20/20 relay tests accepted), tested 2026-11-30`:
    /// one line, no characters rbldnsd would read as syntax.
    static func text(for record: VerdictRecord) -> String {
        let day = String(HostReplyTemplate.timestamp(record.testedAt).prefix(10))
        let accepted = record.testsRun > 0 ? ", \(record.acceptedTests.count)/\(record.testsRun) relay tests accepted" : ""
        let raw = "open relay (verdict \(record.verdict)\(accepted)), tested \(day)"
        return String(raw.map { $0.isNewline || $0 == "$" ? " " : $0 })
    }
}
