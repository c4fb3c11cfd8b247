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

    private let entries = Mutex<[IPAddress: VerdictSummary]>([:])

    public init() {}

    /// Replaces the whole index from the store (start-up, or a reload after the
    /// CLI changed it); returns how many hosts it holds.
    @discardableResult
    public func replaceAll(from store: VerdictStore) throws -> Int {
        var fresh: [IPAddress: VerdictSummary] = [:]
        try store.forEachSummary { host, summary in
            if let address = IPAddress(host) { fresh[address] = summary }
        }
        let count = fresh.count
        entries.withLock { $0 = fresh }
        return count
    }

    public func lookup(_ address: IPAddress, now: Date) -> Lookup {
        guard let summary = entries.withLock({ $0[address] }) else { return .miss }
        return summary.isExpired(at: now) ? .expired(summary) : .hit(summary)
    }

    public func update(_ record: VerdictRecord) {
        guard let address = IPAddress(record.host) else { return }
        entries.withLock { $0[address] = record.summary }
    }

    public var count: Int { entries.withLock { $0.count } }
}
