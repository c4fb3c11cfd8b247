import Foundation
import RelayPolicy
import NIOConcurrencyHelpers
import RelayProbe
import VerdictStore

/// Every cached verdict, in memory, for the milter's connect path: a lookup is
/// one lock-protected dictionary read, never disk or network.
///
/// It keeps only what the connect path needs, packed: a verdict and a source
/// code, two counts and two whole-second times, 12 bytes per host, keyed by a plain
/// integer (IPv4 and IPv6 apart), so a million hosts take tens of megabytes,
/// not hundreds (see BENCHMARKS.md, "Verdict cache").
public final class VerdictIndex: Sendable {
    public enum Lookup: Equatable, Sendable {
        case hit(VerdictSummary)
        case expired(VerdictSummary)
        case miss
    }

    /// A summary in 12 bytes. Times are seconds since 1970, rounded down and
    /// clamped to what 32 bits hold (until 2106); counts saturate at 255.
    private struct Packed {
        var testedAt: UInt32
        var expiresAt: UInt32
        /// The verdict's position in `ProbeVerdict.allCases`.
        var verdictCode: UInt8
        /// The source's position in `VerdictRecord.Source.allCases`.
        var sourceCode: UInt8
        var acceptedCount: UInt8
        var testsRun: UInt8
    }

    private static let verdicts = ProbeVerdict.allCases
    /// Each verdict's position in `verdicts`: every case has one.
    private static let codes = Dictionary(uniqueKeysWithValues: verdicts.enumerated().map { ($1, UInt8($0)) })
    private static let sources = VerdictRecord.Source.allCases
    private static let sourceCodes = Dictionary(uniqueKeysWithValues: sources.enumerated().map { ($1, UInt8($0)) })

    private struct Entries {
        var v4: [UInt32: Packed] = [:]
        var v6: [UInt128: Packed] = [:]
        /// Kept up to date on every change, so a metrics scrape never walks the index.
        var countByVerdict: [ProbeVerdict: Int] = [:]

        func pack(_ summary: VerdictSummary) -> Packed {
            Packed(testedAt: Self.seconds(summary.testedAt), expiresAt: Self.seconds(summary.expiresAt),
                   verdictCode: VerdictIndex.codes[summary.verdict]!, sourceCode: VerdictIndex.sourceCodes[summary.source]!,
                   acceptedCount: UInt8(clamping: summary.acceptedCount), testsRun: UInt8(clamping: summary.testsRun))
        }

        func unpack(_ packed: Packed) -> VerdictSummary {
            VerdictSummary(
                verdict: VerdictIndex.verdicts[Int(packed.verdictCode)],
                testedAt: Date(timeIntervalSince1970: TimeInterval(packed.testedAt)),
                expiresAt: Date(timeIntervalSince1970: TimeInterval(packed.expiresAt)),
                acceptedCount: Int(packed.acceptedCount), testsRun: Int(packed.testsRun),
                source: VerdictIndex.sources[Int(packed.sourceCode)]
            )
        }

        mutating func set(_ summary: VerdictSummary, for address: IPAddress) {
            let packed = pack(summary)
            let old: Packed?
            switch address {
            case .v4(let key): old = v4.updateValue(packed, forKey: key)
            case .v6(let key): old = v6.updateValue(packed, forKey: key)
            }
            if let old { countByVerdict[VerdictIndex.verdicts[Int(old.verdictCode)], default: 0] -= 1 }
            countByVerdict[summary.verdict, default: 0] += 1
        }

        func packed(for address: IPAddress) -> Packed? {
            switch address {
            case .v4(let key): v4[key]
            case .v6(let key): v6[key]
            }
        }

        mutating func remove(_ address: IPAddress) {
            let old: Packed?
            switch address {
            case .v4(let key): old = v4.removeValue(forKey: key)
            case .v6(let key): old = v6.removeValue(forKey: key)
            }
            if let old { countByVerdict[VerdictIndex.verdicts[Int(old.verdictCode)], default: 0] -= 1 }
        }

        static func seconds(_ date: Date) -> UInt32 {
            let value = date.timeIntervalSince1970.rounded(.down)
            return value <= 0 ? 0 : value >= Double(UInt32.max) ? UInt32.max : UInt32(value)
        }
    }

    private let entries = NIOLockedValueBox(Entries())

    public init() {}

    /// Replaces the whole index from the store (start-up, or a reload after the
    /// CLI changed it); returns how many hosts it holds and the store's last
    /// change number included (see `VerdictStore.verdictChanges`).
    @discardableResult
    public func replaceAll(from store: VerdictStore) throws -> (hosts: Int, through: Int) {
        var fresh = Entries()
        let through = try store.forEachSummary { host, summary in
            guard let address = IPAddress(host) else { return }
            fresh.set(summary, for: address)
        }
        let count = fresh.v4.count + fresh.v6.count
        entries.withLockedValue { $0 = fresh }
        return (count, through)
    }

    /// Takes what another process changed in the store: a host gone from it
    /// goes from the index; a changed one is taken unless the index holds a
    /// later test of it (to the second), which is this process's own verdict
    /// on its way to the store. Returns how many hosts changed here.
    @discardableResult
    public func apply(_ changes: VerdictChanges) -> Int {
        let parsed = changes.hosts.compactMap { change in IPAddress(change.host).map { ($0, change.summary) } }
        return entries.withLockedValue { entries in
            var changed = 0
            for (address, summary) in parsed {
                let held = entries.packed(for: address)
                if let summary {
                    if let held, held.testedAt > Entries.seconds(summary.testedAt) { continue }
                    entries.set(summary, for: address)
                    changed += 1
                } else if held != nil {
                    entries.remove(address)
                    changed += 1
                }
            }
            return changed
        }
    }

    public func lookup(_ address: IPAddress, now: Date) -> Lookup {
        guard let summary = entries.withLockedValue({ $0.packed(for: address).map($0.unpack) }) else { return .miss }
        return summary.isExpired(at: now) ? .expired(summary) : .hit(summary)
    }

    /// A record whose verdict this release does not know is not taken.
    public func update(_ record: VerdictRecord) {
        guard let address = IPAddress(record.host), let summary = record.summary else { return }
        entries.withLockedValue { $0.set(summary, for: address) }
    }

    /// Takes another instance's record if it is of a later test than the one
    /// this index holds for the host (to the second); true if it did. The same
    /// record read twice is taken once.
    public func updateIfNewer(_ record: VerdictRecord) -> Bool {
        guard let address = IPAddress(record.host), let summary = record.summary else { return false }
        let tested = Entries.seconds(summary.testedAt)
        return entries.withLockedValue { entries in
            if let held = entries.packed(for: address), held.testedAt >= tested { return false }
            entries.set(summary, for: address)
            return true
        }
    }

    /// Every host with its summary (for the published zone). The tables are
    /// copied under the lock, which costs nothing until the index next
    /// changes (copy on write), and walked outside it.
    public func allHosts() -> [(address: IPAddress, summary: VerdictSummary)] {
        let snapshot = entries.withLockedValue { $0 }
        var hosts: [(address: IPAddress, summary: VerdictSummary)] = []
        hosts.reserveCapacity(snapshot.v4.count + snapshot.v6.count)
        for (key, packed) in snapshot.v4 { hosts.append((.v4(key), snapshot.unpack(packed))) }
        for (key, packed) in snapshot.v6 { hosts.append((.v6(key), snapshot.unpack(packed))) }
        return hosts
    }

    public var count: Int { entries.withLockedValue { $0.v4.count + $0.v6.count } }

    /// How many hosts hold each verdict, by its spelling (metrics labels, `stats`).
    public var countByVerdict: [String: Int] {
        let counts = entries.withLockedValue { $0.countByVerdict }
        return Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) })
    }
}
