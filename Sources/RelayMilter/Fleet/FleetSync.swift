import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RelayConfig
import SharedVerdictStore
import VerdictStore

/// Keeps this instance and the fleet's shared PostgreSQL database in step
/// (`[cache] backend = "postgresql"`):
/// - this instance's own verdicts, queued in its embedded database, are
///   written to the shared one;
/// - other instances' verdicts come into the in-memory index (the connect
///   path never waits on the network) and into the embedded database, at a
///   notification or at the latest every `poll_interval`;
/// - statistics rollups are written there for `relay-milter stats --fleet`;
/// - a test runs once fleet-wide: `claim` before, `release` after;
/// - with `[registered]` on, registered tests go both ways, so that a test
///   message may come back through any instance, and their windows are
///   closed there, once for the fleet.
///
/// When the server is away, enforcement goes on from memory, new verdicts
/// stay queued in the embedded database (a restart keeps them), tests run
/// locally, and the outage is logged once and shown by
/// `relay_milter_shared_store_up` and by
/// `relay_milter_shared_store_last_exchange_timestamp_seconds`, which stops
/// advancing. Everything queued is written when the server is back.
final class FleetSync: Sendable {
    enum ClaimOutcome: Equatable {
        /// Run the test here.
        case test
        /// Do not: another instance tests it, or just did (its verdict is now in the index).
        case skip
    }

    private struct State {
        var store: SharedVerdictStore?
        /// The last change read; changes are read again from a little before
        /// it (see `rereadChanges`).
        var lastChange: Int64 = 0
        /// Changes refused within the window read again, so that a refused
        /// row is counted and logged once, not at every read.
        var refusedChanges: Set<Int64> = []
        var downSince: ContinuousClock.Instant?
        var rollupsWrittenAt: ContinuousClock.Instant?
        /// Wakes the connection's exchange loop; nudges while none runs are
        /// dropped (a new connection starts with an exchange anyway). A stream
        /// per connection: a cancelled iteration ends its stream for good.
        var wake: AsyncStream<Void>.Continuation?
        /// Each registered test's state here when it was last written to, or
        /// taken from, the shared database: an exchange writes only the tests
        /// changed here since. Emptied at each connection.
        var sharedTestStates: [String: RegisteredTestRecord.State] = [:]
    }

    /// Changes are numbered when a transaction makes them, but two writers'
    /// transactions can commit out of that order, so each read goes back this
    /// many numbers. Reading a record twice is harmless (the index keeps the
    /// later test).
    static let rereadChanges: Int64 = 200
    static let batch = 500

    private let settings: RelayMilterConfig.Cache.Shared
    private let claimSeconds: Int
    private let index: VerdictIndex
    private let database: VerdictDatabase
    private let metrics: RelayMetrics
    private let logger: Logger
    private let eventLoop: any EventLoop
    private let retentionHours: Int
    /// Whether registered tests are exchanged (`[registered] enabled`).
    private let exchangesRegisteredTests: Bool
    private let state = NIOLockedValueBox(State())

    /// Registered tests are exchanged while their windows are open, and this
    /// long after, so that an instance that was away hears how they ended.
    static let registeredTestsExchangedAfterWindow: TimeInterval = 3600

    init(
        settings: RelayMilterConfig.Cache.Shared, probeTotalTimeoutSeconds: Int, retentionHours: Int, exchangesRegisteredTests: Bool,
        index: VerdictIndex, database: VerdictDatabase, eventLoop: any EventLoop, metrics: RelayMetrics, logger: Logger
    ) {
        self.settings = settings
        self.exchangesRegisteredTests = exchangesRegisteredTests
        // A claim outlives the longest test; one whose tester died lapses a minute after that.
        claimSeconds = probeTotalTimeoutSeconds + 60
        self.retentionHours = retentionHours
        self.index = index
        self.database = database
        self.eventLoop = eventLoop
        self.metrics = metrics
        self.logger = logger
    }

    /// Connects, and reconnects after each failure, until cancelled.
    func run() async {
        metrics.sharedStore(up: false)
        metrics.sharedStoreExchanged(unixTime: 0)
        var backoffSeconds = 1
        while !Task.isCancelled {
            var connected: SharedVerdictStore?
            do {
                let store = try await connect()
                connected = store
                backoffSeconds = 1
                let schema = try await store.migrate()
                logger.info("shared verdict database connected", metadata: [
                    "shared.host": "\(settings.host):\(settings.port)", "shared.database": "\(settings.database)",
                    "shared.instance": "\(settings.instance)", "shared.schema": "\(schema.to)",
                    "shared.schema_migrated_from": "\(schema.from)",
                ])
                // At most one nudge waits: a burst of them is one exchange.
                let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
                defer { wake.finish() }
                state.withLockedValue {
                    $0.store = store
                    $0.rollupsWrittenAt = nil
                    $0.sharedTestStates = [:]
                    $0.wake = wake
                }
                wake.yield() // a first exchange at once
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { [self] in
                        try await store.onEachVerdictChange { [self] in nudge() }
                        throw ConnectionEnded()
                    }
                    group.addTask { [self] in
                        // The poll: a look every interval, whether notified or not.
                        while true {
                            try await Task.sleep(for: .seconds(settings.pollIntervalSeconds))
                            nudge()
                        }
                    }
                    group.addTask { [self] in
                        do {
                            try await exchange(with: store, at: wakeups)
                        } catch {
                            // Closing ends the listener too, so the group never waits on it.
                            await store.close()
                            throw error
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            } catch where !Task.isCancelled {
                markDown(error, kind: connected == nil ? "connect" : "sync")
            } catch {
                // Stopping: the connection is closed below, before it goes away.
            }
            state.withLockedValue {
                $0.store = nil
                $0.wake = nil
            }
            await connected?.close()
            if Task.isCancelled { break }
            try? await Task.sleep(for: .seconds(backoffSeconds))
            backoffSeconds = min(backoffSeconds * 2, 10)
        }
        state.withLockedValue { $0.store = nil }
    }

    /// Something changed (a local verdict, a notification): look now.
    func nudge() {
        state.withLockedValue { $0.wake }?.yield()
    }

    /// Before a test of `host`: whether to run it here. Without the shared
    /// database, tests run locally (the fleet may then test a host twice).
    func claim(_ host: String) async -> ClaimOutcome {
        guard let store = state.withLockedValue({ $0.store }) else {
            metrics.probeClaim("unavailable")
            return .test
        }
        do {
            switch try await store.claimTest(of: host, forSeconds: claimSeconds) {
            case .claimed:
                metrics.probeClaim("claimed")
                return .test
            case .heldBy(let other):
                metrics.probeClaim("held_elsewhere")
                logger.info("open-relay test left to another instance", metadata: ["client.address": "\(host)", "fleet.instance": "\(other)"])
                return .skip
            case .known(let record):
                metrics.probeClaim("known")
                guard !acceptable([(nil, record)]).isEmpty else { return .test }
                if index.updateIfNewer(record) { database.saveReceived([record]) }
                return .skip
            }
        } catch {
            metrics.probeClaim("unavailable")
            return .test
        }
    }

    /// After a claimed test: its verdict is written first, then the claim
    /// released, so that an instance claiming the host next finds the
    /// verdict (see `SharedVerdictStore.claimTest`). Without the server the
    /// verdict stays queued and the claim lapses.
    func release(_ record: VerdictRecord) async {
        guard let store = state.withLockedValue({ $0.store }) else { return }
        do {
            try await store.upsert([record])
            try await store.releaseClaim(on: record.host)
        } catch {
            nudge() // the loop finds the connection broken and says so
        }
    }

    /// Writes a registered test to the shared database now (before its
    /// message is sent, so that any instance knows the alias when it comes
    /// back); without the server, the next exchange writes it.
    func share(_ test: RegisteredTestRecord) async {
        guard let store = state.withLockedValue({ $0.store }) else { return }
        do {
            try await store.shareRegisteredTests([test])
            state.withLockedValue { $0.sharedTestStates[test.token] = test.state }
        } catch {
            nudge()
        }
    }

    /// Ends the registered tests' windows that passed, in the shared
    /// database, where one instance ends each; the tests this instance made
    /// `undelivered` are copied into its own database and returned (their
    /// verdicts are its to set). Nil without the server: the windows wait,
    /// since a message may have come back through another instance.
    func closeRegisteredWindows(at now: Date) async -> [RegisteredTestRecord]? {
        guard let store = state.withLockedValue({ $0.store }) else { return nil }
        do {
            let undelivered = try await store.closeRegisteredWindows(at: now)
            _ = await database.withWritableStore { try $0.mergeRegisteredTests(undelivered) }
            state.withLockedValue { state in
                for test in undelivered { state.sharedTestStates[test.token] = test.state }
            }
            return undelivered
        } catch {
            nudge()
            return nil
        }
    }

    /// At a clean stop, after the last verdicts and rollups are in the
    /// embedded database: shares them now rather than at the next start,
    /// waiting `timeout` at most. Blocks the calling (main) thread.
    func flushBeforeStop(timeout: Duration) {
        guard let store = state.withLockedValue({ $0.store }) else { return }
        let done = DispatchSemaphore(value: 0)
        let flushing = Task {
            try? await sendQueued(to: store)
            state.withLockedValue { $0.rollupsWrittenAt = nil }
            try? await sendRollupsIfDue(to: store)
            done.signal()
        }
        if done.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1000))) == .timedOut {
            flushing.cancel()
            logger.warning("stopping before the shared database took the last verdicts; they stay queued for the next start")
        }
    }

    // MARK: - The loop

    private struct ConnectionEnded: Error, CustomStringConvertible {
        var description: String { "the notification listener ended" }
    }

    private func connect() async throws -> SharedVerdictStore {
        try await SharedVerdictStore.connect(
            to: try settings.loginEndpoint(), instance: settings.instance, eventLoop: eventLoop,
            queryTimeout: .seconds(settings.queryTimeoutSeconds), logger: quietLogger
        )
    }

    /// postgres-nio logs every connection error at its own levels; ours says
    /// it once, in our words, so its own stay below notice.
    private var quietLogger: Logger {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .critical)
        return quiet
    }

    /// Writes queued verdicts and rollups and reads other instances'
    /// changes at each nudge: a notification, a local verdict, the poll.
    private func exchange(with store: SharedVerdictStore, at wakeups: AsyncStream<Void>) async throws {
        for await _ in wakeups {
            try Task.checkCancellation()
            try await sendQueued(to: store)
            try await receiveChanges(from: store)
            if exchangesRegisteredTests { try await exchangeRegisteredTests(with: store) }
            try await sendRollupsIfDue(to: store)
            markUp()
        }
        throw CancellationError() // the stream ends only when the task is cancelled
    }

    private func sendQueued(to store: SharedVerdictStore) async throws {
        while true {
            guard case .success(let queued)? = await database.withWritableStore({ try $0.queuedForSharing(limit: Self.batch) }),
                  !queued.isEmpty else { break }
            try await store.upsert(queued)
            _ = await database.withWritableStore { try $0.markShared(queued) }
            metrics.sharedVerdicts("sent", count: queued.count)
            if queued.count < Self.batch { break }
        }
        if case .success(let left)? = await database.withWritableStore({ try $0.queuedForSharingCount() }) {
            metrics.sharedStore(queued: left)
        }
    }

    /// The records that pass SharedVerdictCheck; the others are counted
    /// (`shared_store_verdicts_total{direction="refused"}`) and logged, once
    /// each: a change refused before is passed over when read again.
    /// `id` is the change's number when read from the changes (nil for a
    /// record a claim returned, refused each time it comes).
    private func acceptable(_ changes: [(id: Int64?, record: VerdictRecord)]) -> [VerdictRecord] {
        let now = Date()
        var taken: [VerdictRecord] = []
        for (id, record) in changes {
            guard let refusal = SharedVerdictCheck.refusal(of: record, now: now) else {
                taken.append(record)
                continue
            }
            if let id, !state.withLockedValue({ $0.refusedChanges.insert(id).inserted }) { continue }
            metrics.sharedVerdicts("refused", count: 1)
            logger.warning("verdict from the shared database refused", metadata: [
                "client.address": "\(truncatedForLog(UntrustedText.forTerminal(record.host), limit: 64))",
                "probe.verdict": "\(truncatedForLog(UntrustedText.forTerminal(record.verdict), limit: 32))",
                "fleet.refusal": "\(refusal.rawValue)",
                "verdict.expires": "\(HostReplyTemplate.timestamp(record.expiresAt))",
            ])
        }
        return taken
    }

    private func receiveChanges(from store: SharedVerdictStore) async throws {
        var after = max(0, state.withLockedValue { $0.lastChange } - Self.rereadChanges)
        while true {
            let changes = try await store.changes(after: after, limit: Self.batch)
            let fromOthers = acceptable(changes.filter { $0.instance != settings.instance }.map { (Optional($0.id), $0.record) })
            let taken = fromOthers.filter { index.updateIfNewer($0) }
            if !taken.isEmpty {
                database.saveReceived(taken)
                metrics.sharedVerdicts("received", count: taken.count)
            }
            guard let last = changes.last?.id else { break }
            after = last
            state.withLockedValue { state in
                state.lastChange = max(state.lastChange, last)
                // Refusals older than the window read again cannot come back.
                let oldest = state.lastChange - Self.rereadChanges
                state.refusedChanges = state.refusedChanges.filter { $0 >= oldest }
            }
            if changes.count < Self.batch { break }
        }
    }

    /// Writes this instance's registered tests that changed since the shared
    /// database last saw them, and takes in the others' (a state only moves
    /// forward, on both sides, so the order of the two does not matter).
    private func exchangeRegisteredTests(with store: SharedVerdictStore) async throws {
        let since = Date().addingTimeInterval(-Self.registeredTestsExchangedAfterWindow)
        guard case .success(let local)? = await database.withWritableStore({ try $0.registeredTests(endingAfter: since) }) else { return }
        let known = state.withLockedValue { $0.sharedTestStates }
        let changed = local.filter { known[$0.token] != $0.state }
        if !changed.isEmpty { try await store.shareRegisteredTests(changed) }
        let shared = try await store.registeredTests(endingAfter: since)
        let merged = await database.withWritableStore { try $0.mergeRegisteredTests(shared) }
        let taken = if case .success(let taken)? = merged { taken } else { [RegisteredTestRecord]() }
        state.withLockedValue { state in
            for test in changed + taken { state.sharedTestStates[test.token] = test.state }
            let kept = Set((local + taken).map(\.token))
            state.sharedTestStates = state.sharedTestStates.filter { kept.contains($0.key) }
        }
    }

    /// This instance's recent rollups, once a minute and at each reconnection
    /// (periods are written whole, so writing one again is harmless).
    private func sendRollupsIfDue(to store: SharedVerdictStore) async throws {
        let last = state.withLockedValue { $0.rollupsWrittenAt }
        if let last, ContinuousClock.now - last < .seconds(60) { return }
        let nowMinute = Int(Date().timeIntervalSince1970) / 60
        // After an outage, the periods it covered; otherwise the last few.
        let downMinutes = state.withLockedValue { $0.downSince.map { Int(($0.duration(to: .now)).components.seconds) / 60 } } ?? 0
        let sinceMinute = nowMinute - max(5, min(downMinutes + 5, 24 * 60))
        let rows = await database.withWritableStore { store -> [RollupRow] in
            try store.rollups(.minute, since: sinceMinute) + store.rollups(.hour, since: sinceMinute / 60 - 1)
        }
        guard case .success(let rollups)? = rows else { return }
        try await store.setRollups(rollups)
        try await store.pruneRollups(.minute, before: nowMinute - 24 * 60)
        try await store.pruneRollups(.hour, before: nowMinute / 60 - retentionHours)
        state.withLockedValue { $0.rollupsWrittenAt = .now }
    }

    private func markUp() {
        let wasDown = state.withLockedValue { state -> ContinuousClock.Instant? in
            defer { state.downSince = nil }
            return state.downSince
        }
        metrics.sharedStore(up: true)
        // Monitoring's check on the whole loop: `up` says the last attempt
        // worked, this says the loop is still making them.
        metrics.sharedStoreExchanged(unixTime: Int64(Date().timeIntervalSince1970))
        if let wasDown {
            logger.notice("shared verdict database reachable again; queued verdicts written", metadata: [
                "shared.host": "\(settings.host):\(settings.port)",
                "shared.outage_s": "\((ContinuousClock.now - wasDown).components.seconds)",
            ])
        }
    }

    private func markDown(_ error: any Error, kind: String) {
        metrics.sharedStore(up: false)
        metrics.sharedStoreError(kind)
        let first = state.withLockedValue { state -> Bool in
            guard state.downSince == nil else { return false }
            state.downSince = .now
            return true
        }
        // Once per outage: a reconnection every few seconds must not flood the log.
        if first {
            logger.error("shared verdict database unreachable; enforcing from memory, new verdicts queued locally", metadata: [
                "shared.host": "\(settings.host):\(settings.port)",
                // PSQLError's plain description hides the server's message on purpose; ours names no secret.
                "shared.database": "\(settings.database)", "error": "\(String(reflecting: error))",
            ])
        }
    }
}

extension RelayMilterConfig.Cache.Shared {
    /// One connection for a command: connects, runs `body`, closes. Blocks
    /// the calling (main) thread; postgres-nio's own logs stay quiet, the
    /// caller says what failed.
    func withCommandConnection<Value: Sendable>(
        on group: any EventLoopGroup, _ body: @escaping @Sendable (SharedVerdictStore) async throws -> Value
    ) throws -> Value {
        var quiet = Logger(label: "relay-milter.command")
        quiet.logLevel = .critical
        let (logger, endpoint, instance, timeout) = (quiet, try loginEndpoint(), instance, queryTimeoutSeconds)
        return try group.next().makeFutureWithTask {
            let store = try await SharedVerdictStore.connect(
                to: endpoint, instance: instance, eventLoop: group.next(), queryTimeout: .seconds(timeout), logger: logger
            )
            do {
                let value = try await body(store)
                await store.close()
                return value
            } catch {
                await store.close()
                throw error
            }
        }.wait()
    }

    /// The endpoint with the password from `password_file` (its first line),
    /// read at each connection so that a changed password needs no reload.
    func loginEndpoint() throws -> SharedVerdictStore.Endpoint {
        var password: String?
        if let passwordFile {
            let text = try String(contentsOfFile: passwordFile, encoding: .utf8)
            password = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        }
        let tls: SharedVerdictStore.TLSMode = switch self.tls {
        case .disable: .disable
        case .prefer: .prefer
        case .require: .require
        }
        return SharedVerdictStore.Endpoint(host: host, port: port, user: user, password: password, database: database, tls: tls, caFile: caFile)
    }
}
