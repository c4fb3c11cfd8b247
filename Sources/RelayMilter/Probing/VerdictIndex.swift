import Foundation
import RelayPolicy
import Synchronization
import VerdictStore

/// Every cached verdict, in memory, for the milter's connect path: a lookup is
/// one lock-protected dictionary read, never disk or network. It keeps only
/// summaries (no banners, no test names), so a million hosts fit comfortably.
public final class VerdictIndex: Sendable {
    public enum Lookup: Equatable, Sendable {
        case hit(VerdictSummary)
        case expired(VerdictSummary)
        case miss
    }

    private struct Entries {
        var byAddress: [IPAddress: VerdictSummary] = [:]
        /// Kept up to date on every change, so a metrics scrape never walks the index.
        var countByVerdict: [String: Int] = [:]
    }

    private let entries = Mutex(Entries())

    public init() {}

    /// Replaces the whole index from the store (start-up, or a reload after the
    /// CLI changed it); returns how many hosts it holds.
    @discardableResult
    public func replaceAll(from store: VerdictStore) throws -> Int {
        var fresh = Entries()
        try store.forEachSummary { host, summary in
            guard let address = IPAddress(host) else { return }
            if let old = fresh.byAddress.updateValue(summary, forKey: address) { fresh.countByVerdict[old.verdict, default: 0] -= 1 }
            fresh.countByVerdict[summary.verdict, default: 0] += 1
        }
        let count = fresh.byAddress.count
        entries.withLock { $0 = fresh }
        return count
    }

    public func lookup(_ address: IPAddress, now: Date) -> Lookup {
        guard let summary = entries.withLock({ $0.byAddress[address] }) else { return .miss }
        return summary.isExpired(at: now) ? .expired(summary) : .hit(summary)
    }

    public func update(_ record: VerdictRecord) {
        guard let address = IPAddress(record.host) else { return }
        entries.withLock { entries in
            if let old = entries.byAddress.updateValue(record.summary, forKey: address) {
                entries.countByVerdict[old.verdict, default: 0] -= 1
            }
            entries.countByVerdict[record.verdict, default: 0] += 1
        }
    }

    public var count: Int { entries.withLock { $0.byAddress.count } }

    /// How many hosts hold each verdict.
    public var countByVerdict: [String: Int] { entries.withLock { $0.countByVerdict } }
}
