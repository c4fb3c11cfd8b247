import Foundation
import Logging
import RelayConfig
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import NIOConcurrencyHelpers
import VerdictStore

/// Decides which connecting hosts get an open-relay test, and runs the tests
/// in the background without ever making a caller wait.
///
/// `consider` is called from libmilter's threads: it only takes a lock,
/// appends to a bounded queue and wakes the worker. The worker (`run`, on
/// Swift's concurrency pool) starts tests on NIO's event loops, at most
/// `max_in_flight` at a time, one per host, and one per /24 (IPv4) or /48
/// (IPv6) per `network_interval`. A finished test updates the in-memory
/// index at once and is written to the store in the background.
final class ProbeScheduler: Sendable {
    enum Admission: Equatable {
        case queued
        case alreadyPending
        case excluded
        case queueFull
        case disabled
    }

    struct Job: Sendable {
        let address: IPAddress
        let settings: RelayMilterConfig.Probe
        let ttlSeconds: [ProbeVerdict: Int]
    }

    struct State {
        var queue: [Job] = []
        var pending: Set<IPAddress> = []
        var inFlight = 0
        /// When each /24 or /48 was last tested, for network_interval.
        var lastTestOfNetwork: [NetworkBlock: Date] = [:]
        var stopped = false
        var droppedForFullQueue = 0

        /// Notes a test of `network`, keeping at most `limit` networks: an
        /// entry matters only for `interval`, so older ones go first; if a
        /// burst of new networks fills the map within one interval, the older
        /// half goes too (those networks may be tested again a little early,
        /// which beats memory that grows with every network ever seen).
        mutating func noteTest(of network: NetworkBlock, at now: Date, interval: TimeInterval, limit: Int) {
            lastTestOfNetwork[network] = now
            guard lastTestOfNetwork.count > limit else { return }
            lastTestOfNetwork = lastTestOfNetwork.filter { now.timeIntervalSince($0.value) < interval }
            guard lastTestOfNetwork.count > limit / 2 else { return }
            let newest = lastTestOfNetwork.sorted { $0.value > $1.value }.prefix(limit / 2)
            lastTestOfNetwork = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
        }
    }

    /// Networks remembered for network_interval, at most.
    let rememberedNetworksLimit: Int

    private let state = NIOLockedValueBox(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let prober: SMTPProber
    private let index: VerdictIndex
    /// Where finished tests are written (none in unit tests).
    private let database: VerdictDatabase?
    /// Claims tests fleet-wide and shares verdicts, with a shared store.
    private let fleet: FleetSync?
    /// Registered tests of the hosts an anonymous test leaves unsettled; nil when `[registered]` is off.
    private let followUps: RegisteredFollowUps?
    private let logger: Logger
    private let metrics: RelayMetrics

    init(prober: SMTPProber, index: VerdictIndex, database: VerdictDatabase? = nil, fleet: FleetSync? = nil,
         followUps: RegisteredFollowUps? = nil, logger: Logger, metrics: RelayMetrics, rememberedNetworksLimit: Int = 100_000) {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.rememberedNetworksLimit = rememberedNetworksLimit
        self.prober = prober
        self.index = index
        self.database = database
        self.fleet = fleet
        self.followUps = followUps
        self.logger = logger
        self.metrics = metrics
    }

    /// Whether the config allows a test of `address` at all.
    func mayTest(_ address: IPAddress, config: RelayMilterConfig) -> Bool {
        config.probe.enabled && !config.policy.isTrusted(address) && !Self.isExcluded(address, config.probe)
    }

    /// Queues a test of `address` if the config allows one. Never blocks.
    func consider(_ address: IPAddress, config: RelayMilterConfig) -> Admission {
        let probe = config.probeSettings
        guard probe.enabled else { return .disabled }
        if config.policy.isTrusted(address) || Self.isExcluded(address, probe) { return .excluded }
        let (admission, dropped, depth): (Admission, Int, Int) = state.withLockedValue { state in
            guard !state.stopped else { return (.disabled, 0, state.queue.count) }
            guard !state.pending.contains(address) else { return (.alreadyPending, 0, state.queue.count) }
            guard state.queue.count < probe.queueSize else {
                state.droppedForFullQueue += 1
                return (.queueFull, state.droppedForFullQueue, state.queue.count)
            }
            state.queue.append(Job(address: address, settings: probe, ttlSeconds: config.cache.ttlSeconds))
            state.pending.insert(address)
            return (.queued, 0, state.queue.count)
        }
        metrics.probeQueue(depth: depth)
        if admission == .queued { wake.yield() }
        if admission == .queueFull { metrics.probeDropped("queue_full") }
        // A flood of new hosts must not become a flood of log lines: the first drop, then every 1000th.
        if admission == .queueFull, dropped % 1000 == 1 {
            logger.warning("open-relay test queue full; tests dropped", metadata: [
                "client.address": "\(address)", "probe.dropped_total": "\(dropped)", "probe.queue_size": "\(probe.queueSize)",
            ])
        }
        return admission
    }

    private static let loopback = [try! NetworkBlock(parsing: "127.0.0.0/8"), try! NetworkBlock(parsing: "::1/128")]

    /// `allow_loopback` lifts the loopback exclusion itself (`127.0.0.0/8`,
    /// `::1`), never a narrower one an admin listed inside it.
    static func isExcluded(_ address: IPAddress, _ probe: RelayMilterConfig.Probe) -> Bool {
        probe.excludeNetworks.contains { block in
            if probe.allowLoopback, loopback.contains(block) { return false }
            return block.contains(address)
        }
    }

    /// Runs tests until `stop()`. Call once, from a task.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await _ in wakeups {
                while let job = nextJob() {
                    group.addTask { await self.test(job) }
                }
            }
        }
    }

    /// No more tests start; tests in flight finish on their own.
    func stop() {
        state.withLockedValue { $0.stopped = true }
        wake.finish()
    }

    /// The next job that may start now, dropping those whose network was tested too recently.
    private func nextJob() -> Job? {
        let now = Date()
        let (job, skipped, depth) = state.withLockedValue { state -> (Job?, Int, Int) in
            var skipped = 0
            while state.inFlight < (state.queue.first?.settings.maxInFlight ?? 0), !state.queue.isEmpty {
                let job = state.queue.removeFirst()
                let network = Self.network(of: job.address)
                if let last = state.lastTestOfNetwork[network],
                   now.timeIntervalSince(last) < Double(job.settings.networkIntervalSeconds) {
                    state.pending.remove(job.address) // tested again at a later connection
                    skipped += 1
                    continue
                }
                state.noteTest(of: network, at: now, interval: Double(job.settings.networkIntervalSeconds), limit: rememberedNetworksLimit)
                state.inFlight += 1
                return (job, skipped, state.queue.count)
            }
            return (nil, skipped, state.queue.count)
        }
        for _ in 0..<skipped { metrics.probeDropped("network_interval") }
        metrics.probeQueue(depth: depth)
        return job
    }

    private func test(_ job: Job) async {
        if let fleet, await fleet.claim("\(job.address)") == .skip {
            finish(job)
            return
        }
        let started = ContinuousClock.now
        let target = ProbeTarget(address: "\(job.address)", port: job.settings.port, sourceAddress: job.settings.sourceAddress.map { "\($0)" })
        let report = await prober.probe(target, configuration: job.settings.machineConfiguration(for: target), timeouts: job.settings.timeouts)
        let elapsed = ContinuousClock.now - started
        let record = VerdictRecord(report, host: "\(job.address)", ttlSeconds: job.ttlSeconds, now: Date())
        index.update(record)
        metrics.probeFinished(verdict: report.verdict.rawValue, took: elapsed)
        database?.save(record)
        await fleet?.release(record)
        logger.info("open-relay test finished", metadata: [
            "client.address": "\(job.address)",
            "probe.verdict": "\(report.verdict.rawValue)",
            "probe.accepted": "\(report.acceptedTests.count)/\(record.testsRun)",
            "probe.accepted_tests": "\(truncatedForLog(report.acceptedTests.joined(separator: ","), limit: 600))",
            "probe.port": "\(job.settings.port)",
            "probe.duration_ms": "\(elapsed.milliseconds)",
            "probe.detail": "\(truncatedForLog(report.detail, limit: 200))",
        ])
        // The host stays pending until its registered test (if any) has its
        // answer, so that a new connection cannot start a second one.
        await followUps?.followUp(target, anonymousVerdict: report.verdict)
        finish(job)
    }

    private func finish(_ job: Job) {
        state.withLockedValue { state in
            state.inFlight -= 1
            state.pending.remove(job.address)
        }
        wake.yield()
    }

    static func network(of address: IPAddress) -> NetworkBlock {
        let length = address.bitWidth == 32 ? 24 : 48
        return NetworkBlock(masking: address, to: length)
    }
}

extension Duration {
    /// Whole milliseconds, for log fields.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

extension VerdictRecord {
    /// The cache record of a finished test.
    init(_ report: ProbeReport, host: String, ttlSeconds: [ProbeVerdict: Int], now: Date) {
        let ttl = ttlSeconds[report.verdict] ?? report.verdict.defaultTTLSeconds
        self.init(
            host: host, verdict: report.verdict.rawValue, testedAt: now, expiresAt: now.addingTimeInterval(Double(ttl)),
            acceptedTests: report.acceptedTests, testsRun: report.outcomes.filter { $0.mailReply != nil }.count,
            banner: report.banner, detail: report.detail, source: .probe
        )
    }
}
