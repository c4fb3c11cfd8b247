import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import VerdictStore

/// The daemon's verdict database, and the one place that opens, writes and
/// re-reads it. The database is a copy of what matters, never a dependency:
/// enforcement reads the in-memory index, and what cannot be written is kept
/// here and written as soon as the database takes writes again.
///
/// Every write, reopen and re-read runs on one serial queue, so a write never
/// races a reopen and no caller (probe results, the statistics) waits
/// on the disk. Before each write (so at least every 10 seconds, with the
/// statistics) and at SIGHUP it heals what it can:
/// - a damaged file is moved aside and rebuilt (`openMovingDamagedAside`);
/// - a file deleted while open is written back from the still-open copy;
/// - a file an admin replaced is read into the index; from one that another
///   process committed to (`relay-milter cache set`, `probe`, a trap's
///   daemon) the hosts it changed are read, so that their verdicts reach
///   the daemon within seconds without a SIGHUP;
/// - a database that cannot be opened for writing (read-only directory or
///   file system) is read once, read-only, and opened for writing again as
///   soon as that works.
/// Each problem is logged once, with its recovery, and counted in
/// `relay_milter_cache_errors_total{kind}`.
final class VerdictDatabase: Sendable {
    private enum Handle {
        case writable(VerdictStore)
        case readOnly(VerdictStore)
        case unavailable
    }

    private struct State {
        var handle = Handle.unavailable
        /// The latest verdict per host not yet written, and statistics rows.
        var unsavedVerdicts: [String: VerdictRecord] = [:]
        /// Hosts among the unsaved whose verdict is this instance's own, to be
        /// queued for the fleet's shared database when written.
        var unsavedToShare: Set<String> = []
        var unsavedRollups: [RollupRow] = []
        /// The writable file's `commitsElsewhere` when the index last read it.
        var commitsRead: Int?
        /// The last of the writable file's verdict changes the index has read
        /// (`VerdictStore.verdictChanges`); nil when the last read failed.
        var changesRead: Int?
    }

    /// Bounds on what is kept for a database that takes no writes. Beyond
    /// them new rows are not kept (verdicts stay in the index all the same).
    static let unsavedVerdictLimit = 100_000
    static let unsavedRollupLimit = 100_000

    let path: String
    /// True with a shared (PostgreSQL) store: this instance's own verdicts
    /// are queued in the file for it (`FleetSync` writes them there).
    let queuesForSharing: Bool
    private let index: VerdictIndex
    private let health: CacheWriteHealth
    private let metrics: RelayMetrics
    private let logger: Logger
    /// Background priority (nice 10 on Linux), like the tests whose verdicts
    /// it writes: without a QoS its writes ran at nice 0, level with the
    /// milter's callback threads.
    private let queue = DispatchQueue(label: "relay-milter.verdict-database", qos: .background)
    /// Only used on `queue`; the lock is there so that ThreadSanitizer sees
    /// the hand-offs between the queue's threads.
    private let state = NIOLockedValueBox(State())

    init(path: String, queuesForSharing: Bool = false, index: VerdictIndex, metrics: RelayMetrics, logger: Logger) {
        self.path = path
        self.queuesForSharing = queuesForSharing
        self.index = index
        health = CacheWriteHealth(logger: logger, metrics: metrics)
        self.metrics = metrics
        self.logger = logger
    }

    /// Opens the database and loads it into the index (at start). The daemon
    /// runs whatever happens here; the log says how.
    func open() {
        queue.sync {
            state.withLockedValue { state in
                if let store = openWritable() {
                    state.handle = .writable(store)
                    read(store, into: &state)
                    return
                }
                metrics.cacheError("open")
                do {
                    let snapshot = try VerdictStore.openReadOnlySnapshot(path: path)
                    state.handle = .readOnly(snapshot)
                    let loaded = loadIndex(from: snapshot, state)
                    logger.error("cannot write the verdict database; its verdicts are read, new ones kept in memory until it can be written", metadata: [
                        "cache.path": "\(path)", "cache.entries": "\(loaded?.hosts ?? 0)",
                    ])
                } catch {
                    logger.error("cannot open the verdict database; verdicts are kept in memory until it can be opened", metadata: [
                        "cache.path": "\(path)", "error": "\(error)",
                    ])
                }
            }
        }
    }

    /// Writes a finished test's verdict (already in the index) in the
    /// background, queued for the shared store when there is one.
    func save(_ record: VerdictRecord) {
        keep([record], share: queuesForSharing)
    }

    /// Writes other instances' verdicts (already in the index) in the background.
    func saveReceived(_ records: [VerdictRecord]) {
        keep(records, share: false)
    }

    private func keep(_ records: [VerdictRecord], share: Bool) {
        queue.async { [self] in
            state.withLockedValue { state in
                for record in records where state.unsavedVerdicts[record.host] != nil || state.unsavedVerdicts.count < Self.unsavedVerdictLimit {
                    state.unsavedVerdicts[record.host] = record
                    if share { state.unsavedToShare.insert(record.host) } else { state.unsavedToShare.remove(record.host) }
                }
                writeUnsaved(&state, writing: "verdict")
            }
        }
    }

    /// Runs `body` on the writable database, in order with the writes, without
    /// holding up the calling task's thread; nil when it cannot be written now.
    func withWritableStore<T: Sendable>(_ body: @escaping @Sendable (VerdictStore) throws -> T) async -> Result<T, any Error>? {
        await withCheckedContinuation { continuation in
            queue.async { [self] in continuation.resume(returning: runOnWritableStore(body)) }
        }
    }

    /// `withWritableStore` for a caller that must wait for the write and may
    /// (the trap's end of message, which tells the client nothing until its
    /// evidence is on disk): nil when it cannot be written now, or not within
    /// `timeout` (it may still be written later).
    func withWritableStoreWaiting<T: Sendable>(timeout: DispatchTimeInterval, _ body: @escaping @Sendable (VerdictStore) throws -> T) -> Result<T, any Error>? {
        let done = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<Result<T, any Error>?>(nil)
        queue.async { [self] in
            let result = runOnWritableStore(body)
            outcome.withLockedValue { $0 = result }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return outcome.withLockedValue { $0 }
    }

    /// Adds statistics rollups in the background.
    func addRollups(_ rows: [RollupRow]) {
        queue.async { [self] in
            state.withLockedValue { state in
                state.unsavedRollups += rows.prefix(max(0, Self.unsavedRollupLimit - state.unsavedRollups.count))
                writeUnsaved(&state, writing: "statistics")
            }
        }
    }

    /// Runs `body` on the database as it is now (writable or a read-only
    /// snapshot), in order with the writes; nil when there is none.
    func withStore<T>(_ body: (VerdictStore) throws -> T) rethrows -> T? {
        try queue.sync {
            try state.withLockedValue { state in
                switch state.handle {
                case .writable(let store), .readOnly(let store): try body(store)
                case .unavailable: nil
                }
            }
        }
    }

    /// At SIGHUP: the same healing as before a write, then the whole index is
    /// read again, so that `relay-milter cache set/forget` reach the daemon.
    func reload() {
        queue.sync {
            state.withLockedValue { state in
                // Reopening a replaced or read-only file has just read it.
                guard !writeUnsaved(&state, writing: "reload") else { return }
                switch state.handle {
                case .writable(let store): read(store, into: &state)
                case .readOnly(let store): loadIndex(from: store, state)
                case .unavailable: break
                }
            }
        }
    }

    /// Writes what is left, waiting for it (at a clean stop).
    func finish() {
        queue.sync { _ = state.withLockedValue { writeUnsaved(&$0, writing: "stop") } }
    }

    // MARK: - On the queue

    /// `body` on the store to write to, or nil when there is none now.
    private func runOnWritableStore<T>(_ body: (VerdictStore) throws -> T) -> Result<T, any Error>? {
        state.withLockedValue { state in
            guard let (store, _) = storeForWriting(&state) else { return nil }
            return Result { try body(store) }
        }
    }

    private func openWritable() -> VerdictStore? {
        do {
            let (store, movedTo) = try VerdictStore.openMovingDamagedAside(path: path)
            if let movedTo {
                metrics.cacheError("corrupt")
                logger.error("the verdict database was damaged: moved aside, starting with an empty cache", metadata: [
                    "cache.path": "\(path)", "cache.moved_to": "\(movedTo)",
                ])
            }
            return store
        } catch {
            return nil
        }
    }

    /// Reads the writable `store` into the index, noting how far its other
    /// writers' commits go (taken first: a commit during the read is read
    /// again at the next check, never missed).
    private func read(_ store: VerdictStore, into state: inout State) {
        state.commitsRead = try? store.commitsElsewhere()
        state.changesRead = loadIndex(from: store, state)?.through
    }

    /// Reads what another process changed in the writable `store` into the
    /// index; the whole of it when the change log no longer reaches back to
    /// the last read (a bulk load) or that read failed.
    private func readChanges(_ store: VerdictStore, commits: Int, into state: inout State) {
        guard let after = state.changesRead else { return read(store, into: &state) }
        do {
            guard let changes = try store.verdictChanges(after: after) else { return read(store, into: &state) }
            state.commitsRead = commits
            let changed = index.apply(changes)
            for record in state.unsavedVerdicts.values { index.update(record) }
            state.changesRead = changes.through
            if changed > 0 {
                logger.info("verdict cache changed by another process", metadata: [
                    "cache.changed": "\(changed)", "cache.path": "\(store.path)",
                ])
            }
        } catch {
            logger.error("cannot read the verdict database's changes; keeping the verdicts in memory", metadata: ["error": "\(error)"])
        }
    }

    /// Fills the index from `store`, then lays the unsaved verdicts over it.
    @discardableResult
    private func loadIndex(from store: VerdictStore, _ state: State) -> (hosts: Int, through: Int)? {
        do {
            let started = ContinuousClock.now
            let loaded = try index.replaceAll(from: store)
            for record in state.unsavedVerdicts.values { index.update(record) }
            logger.info("verdict cache loaded", metadata: [
                "cache.entries": "\(loaded.hosts)", "cache.path": "\(store.path)",
                "cache.load_ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
            return loaded
        } catch {
            logger.error("cannot read the verdict database; keeping the verdicts in memory", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The store to write to, after checking that its file is still the one
    /// at the path and retrying a database that could not be written;
    /// `indexRead` when that reopened the file and read it into the index.
    private func storeForWriting(_ state: inout State) -> (store: VerdictStore, indexRead: Bool)? {
        switch state.handle {
        case .writable(let store):
            switch store.fileAtPath {
            case .same:
                guard let commits = try? store.commitsElsewhere(), commits != state.commitsRead else { return (store, false) }
                // Another process wrote to it: its verdicts (a `cache set`) are read in.
                readChanges(store, commits: commits, into: &state)
                return (store, false)
            case .gone:
                metrics.cacheError("deleted")
                do {
                    let rewritten = try store.rewrittenToPath()
                    state.handle = .writable(rewritten)
                    state.commitsRead = try? rewritten.commitsElsewhere()
                    state.changesRead = try? rewritten.lastVerdictChange()
                    logger.error("the verdict database file was deleted while open; written back from the open copy", metadata: ["cache.path": "\(path)"])
                    return (rewritten, false)
                } catch {
                    state.handle = .unavailable
                    logger.error("the verdict database file was deleted and cannot be written back; verdicts are kept in memory", metadata: [
                        "cache.path": "\(path)", "error": "\(error)",
                    ])
                    return nil
                }
            case .replaced:
                guard let reopened = openWritable() else {
                    state.handle = .unavailable
                    return nil
                }
                state.handle = .writable(reopened)
                logger.notice("the verdict database file was replaced; reading the new one", metadata: ["cache.path": "\(path)"])
                read(reopened, into: &state)
                return (reopened, true)
            }
        case .readOnly, .unavailable:
            let wasReadOnly = if case .readOnly = state.handle { true } else { false }
            guard let reopened = openWritable() else { return nil }
            state.handle = .writable(reopened)
            logger.notice("the verdict database can be written again", metadata: [
                "cache.path": "\(path)", "cache.unsaved": "\(state.unsavedVerdicts.count)",
            ])
            // After a read-only spell the file may have changed (an admin's
            // fix); with no file before, the index is all there is, and
            // reading the fresh file would empty it.
            state.commitsRead = try? reopened.commitsElsewhere()
            state.changesRead = wasReadOnly ? loadIndex(from: reopened, state)?.through : try? reopened.lastVerdictChange()
            return (reopened, wasReadOnly)
        }
    }

    /// Returns `storeForWriting`'s `indexRead`.
    @discardableResult
    private func writeUnsaved(_ state: inout State, writing what: String) -> Bool {
        guard let (store, indexRead) = storeForWriting(&state) else { return false }
        do {
            if !state.unsavedVerdicts.isEmpty {
                let (toShare, others) = state.unsavedVerdicts.values.reduce(into: ([VerdictRecord](), [VerdictRecord]())) {
                    if state.unsavedToShare.contains($1.host) { $0.0.append($1) } else { $0.1.append($1) }
                }
                if !toShare.isEmpty { try store.saveAndQueueForSharing(toShare) }
                if !others.isEmpty { try store.saveAll(others) }
                state.unsavedVerdicts = [:]
                state.unsavedToShare = []
            }
            if !state.unsavedRollups.isEmpty {
                try store.addRollups(state.unsavedRollups)
                state.unsavedRollups = []
            }
            health.record(nil, writing: what)
        } catch {
            health.record(error, writing: what)
        }
        return indexRead
    }
}
