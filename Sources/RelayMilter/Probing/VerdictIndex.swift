import Foundation
import RelayPolicy
import Synchronization
import VerdictStore

/// Every cached verdict, in memory, for the milter's connect path: a lookup is
/// one lock-protected dictionary read, never disk or network.
final class VerdictIndex: Sendable {
    enum Lookup: Equatable {
        case hit(VerdictRecord)
        case expired(VerdictRecord)
        case miss
    }

    private let entries = Mutex<[IPAddress: VerdictRecord]>([:])

    /// Replaces the whole index (start-up, or a reload after the CLI changed the store).
    func replaceAll(with records: [VerdictRecord]) {
        var fresh: [IPAddress: VerdictRecord] = [:]
        fresh.reserveCapacity(records.count)
        for record in records {
            if let address = IPAddress(record.host) { fresh[address] = record }
        }
        entries.withLock { $0 = fresh }
    }

    func lookup(_ address: IPAddress, now: Date) -> Lookup {
        guard let record = entries.withLock({ $0[address] }) else { return .miss }
        return record.isExpired(at: now) ? .expired(record) : .hit(record)
    }

    func update(_ record: VerdictRecord) {
        guard let address = IPAddress(record.host) else { return }
        entries.withLock { $0[address] = record }
    }

    var count: Int { entries.withLock { $0.count } }
}
