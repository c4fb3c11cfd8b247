import Prometheus
import RelayPolicy

/// Every metric relay-milter exports, with help text and fixed label sets
/// (stage, action, reason, verdict, result): never an address or a domain.
///
/// The metrics are registered straight on swift-prometheus's collector
/// registry rather than through swift-metrics, because only the registry's
/// API carries the `# HELP` text Prometheus tooling expects, and the registry
/// refuses the same name registered with and without help.
public final class RelayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// False when `[metrics] enabled = false`: nothing is recorded at all.
    let recording: Bool

    private let connectionsTotal: Counter
    private let connectionsActive: Gauge
    private let messagesTagged: Counter
    private let mtaRejected: Counter
    private let probeQueueDepth: Gauge
    /// Every series the hot path touches is created once, here, so that
    /// recording is an atomic add: no registry lock, no label hashing, no
    /// allocation inside a milter callback.
    private let decisions: [Counter]
    private let callbackDurations: [DurationHistogram]
    private let cacheLookups: [String: Counter]
    private let unidentifiedClients: [MTAMacros.ClientAddress.Unknown: Counter]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), version: String, recording: Bool = true) {
        self.registry = registry
        self.recording = recording
        connectionsTotal = registry.makeCounter(descriptor: Self.name("connections_total", "MTA connections seen by the milter."))
        connectionsActive = registry.makeGauge(descriptor: Self.name("connections_active", "MTA connections open now."))
        messagesTagged = registry.makeCounter(descriptor: Self.name("messages_tagged_total", "Messages that left with a relay-milter tag header."))
        mtaRejected = registry.makeCounter(descriptor: Self.name(
            "mta_rejected_recipients_total", "Recipients the MTA refused itself before relay-milter decided (SMFIP_RCPT_REJ)."))
        probeQueueDepth = registry.makeGauge(descriptor: Self.name("probe_queue_depth", "Hosts waiting for an open-relay test."))
        registry.makeGauge(descriptor: Self.name("build_info", "relay-milter build; the value is always 1."), labels: [("version", version)]).set(Int64(1))
        var decisions: [Counter] = []
        for stage in Self.decisionStages {
            for action in PolicyAction.allCases {
                for reason in ReasonCode.allCases {
                    decisions.append(registry.makeCounter(descriptor: Self.decisionsName, labels: [
                        ("stage", stage.rawValue), ("action", action.rawValue), ("reason", reason.rawValue),
                    ]))
                }
            }
        }
        self.decisions = decisions
        callbackDurations = Stage.allCases.map { stage in
            registry.makeDurationHistogram(descriptor: Self.callbackName, labels: [("stage", stage.rawValue)], buckets: Self.callbackBuckets)
        }
        cacheLookups = Dictionary(uniqueKeysWithValues: ["hit", "miss", "expired"].map { result in
            (result, registry.makeCounter(descriptor: Self.cacheLookupsName, labels: [("result", result)]))
        })
        // Both series from the start, so that an alert on their rate needs no absent() guard.
        unidentifiedClients = Dictionary(uniqueKeysWithValues: MTAMacros.ClientAddress.Unknown.allCases.map { cause in
            (cause, registry.makeCounter(descriptor: Self.unidentifiedClientsName, labels: [("cause", cause.rawValue)]))
        })
    }

    static let decisionStages: [Stage] = [.rcpt, .mail]
    private static let actionIndex = Dictionary(uniqueKeysWithValues: PolicyAction.allCases.enumerated().map { ($1, $0) })
    private static let reasonIndex = Dictionary(uniqueKeysWithValues: ReasonCode.allCases.enumerated().map { ($1, $0) })

    static func name(_ suffix: String, _ help: String) -> MetricNameDescriptor {
        // The unit is part of each suffix (`_total`, `_seconds`), as the metric names were written before units were separate.
        MetricNameDescriptor(namespace: "relay_milter", metricName: suffix, unitName: "", helpText: help)
    }

    // Computed: swift-prometheus's descriptor type is not Sendable, so it cannot be a shared constant.
    static var decisionsName: MetricNameDescriptor { name("decisions_total", "Relay and host decisions, by stage (rcpt, mail), applied action and reason code.") }
    static var callbackName: MetricNameDescriptor { name("callback_duration_seconds", "Time relay-milter spends in a milter callback, by stage.") }
    static var probeTestsName: MetricNameDescriptor { name("probe_tests_total", "Finished open-relay tests, by verdict.") }
    static var probeDurationName: MetricNameDescriptor { name("probe_duration_seconds", "Duration of open-relay tests.") }
    static var probeDroppedName: MetricNameDescriptor { name("probe_dropped_total", "Open-relay tests not run, by reason (queue_full, network_interval).") }
    static var cacheEntriesName: MetricNameDescriptor { name("cache_entries", "Hosts in the verdict cache, by verdict.") }
    static var cacheLookupsName: MetricNameDescriptor { name("cache_lookups_total", "Verdict cache lookups at connect, by result (hit, miss, expired).") }
    static var unidentifiedClientsName: MetricNameDescriptor {
        name("clients_unidentified_total",
             "Connections whose client address the MTA did not give, by cause (absent: no address at all; unparsable: not an IP address).")
    }
    static var cacheErrorsName: MetricNameDescriptor { name("cache_errors_total", "Verdict database problems, by kind (corrupt, open, write, deleted).") }
    static var sharedUpName: MetricNameDescriptor { name("shared_store_up", "1 while the fleet's shared PostgreSQL database is reachable, 0 while it is not.") }
    static var sharedErrorsName: MetricNameDescriptor { name("shared_store_errors_total", "Shared database failures, by kind (connect, sync).") }
    static var sharedExchangeName: MetricNameDescriptor {
        name("shared_store_last_exchange_timestamp_seconds",
             "When this instance last exchanged verdicts with the shared database (Unix time; 0 until the first exchange). It stops advancing whatever stops the exchange.")
    }
    static var sharedQueuedName: MetricNameDescriptor { name("shared_store_queued_verdicts", "Verdicts of this instance not yet written to the shared database.") }
    static var sharedVerdictsName: MetricNameDescriptor { name("shared_store_verdicts_total", "Verdicts exchanged with the shared database, by direction (sent, received, refused: not a known verdict, a well-formed address and sane times).") }
    static var probeClaimsName: MetricNameDescriptor { name("probe_claims_total", "Fleet-wide test claims, by result (claimed, held_elsewhere, known, unavailable).") }
    static var registeredTestsName: MetricNameDescriptor {
        name("registered_tests_total", "Registered relay tests settled by this daemon, by outcome: delivered, undelivered; and of those it starts itself, refused, not_sent.")
    }
    static var registeredAliasesRefusedName: MetricNameDescriptor {
        name("registered_aliases_refused_total", "Messages for a registered test address that was unknown, expired or already used (refused), or not yet copied from the fleet (tempfailed).")
    }
    static var trapMessagesName: MetricNameDescriptor {
        name("trap_messages_total", "Messages the trap listener took and discarded, by kind (relay_attempt: recorded as evidence; local: allowed mail discarded as [trap] local_mail says; unrecorded: tempfailed because the evidence could not be written).")
    }
    static var trapRecipientsName: MetricNameDescriptor { name("trap_recipients_total", "Recipients named by relay attempts the trap took.") }
    static var dnsblLookupsName: MetricNameDescriptor { name("dnsbl_lookups_total", "DNS blocklist lookups, by result (listed, not_listed, error).") }
    static var reloadsName: MetricNameDescriptor { name("config_reloads_total", "Configuration reloads (SIGHUP), by result (ok, error).") }

    static let callbackBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
    ]
    static let probeBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
    ]

    public enum Stage: String, CaseIterable, Sendable { case connect, helo, mail, rcpt, data, eom }

    func decision(stage: Stage, action: PolicyAction, reason: ReasonCode) {
        guard recording, let stageIndex = Self.decisionStages.firstIndex(of: stage),
              let actionIndex = Self.actionIndex[action], let reasonIndex = Self.reasonIndex[reason] else { return }
        decisions[(stageIndex * PolicyAction.allCases.count + actionIndex) * ReasonCode.allCases.count + reasonIndex].increment()
        if reason == .mtaRejected { mtaRejected.increment() }
    }

    func callback(_ stage: Stage, took duration: Duration) {
        guard recording, let index = Stage.allCases.firstIndex(of: stage) else { return }
        callbackDurations[index].recordNanoseconds(duration.nanoseconds)
    }

    func connectionOpened() {
        guard recording else { return }
        connectionsTotal.increment()
        connectionsActive.increment()
    }

    func clientUnidentified(_ cause: MTAMacros.ClientAddress.Unknown) {
        guard recording else { return }
        unidentifiedClients[cause]?.increment()
    }

    func connectionClosed() { if recording { connectionsActive.decrement() } }
    func messageTagged() { if recording { messagesTagged.increment() } }

    /// A registered test settled here: `delivered` (it came back) or `undelivered`
    /// (its window ended); one the daemon started, `refused` or `not_sent` too.
    func registeredTestSettled(_ outcome: String) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.registeredTestsName, labels: [("outcome", outcome)]).increment()
    }

    /// A message the trap took: `relay_attempt`, `local` or `unrecorded`.
    func trapMessage(_ kind: String, recipients: Int = 0) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.trapMessagesName, labels: [("kind", kind)]).increment()
        if recipients > 0 { registry.makeCounter(descriptor: Self.trapRecipientsName).increment(by: Int64(recipients)) }
    }

    func registeredAliasRefused() {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.registeredAliasesRefusedName).increment()
    }

    func probeFinished(verdict: String, took duration: Duration) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.probeTestsName, labels: [("verdict", verdict)]).increment()
        registry.makeDurationHistogram(descriptor: Self.probeDurationName, labels: [], buckets: Self.probeBuckets)
            .recordNanoseconds(duration.nanoseconds)
    }

    func probeDropped(_ reason: String) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.probeDroppedName, labels: [("reason", reason)]).increment()
    }

    func probeQueue(depth: Int) { if recording { probeQueueDepth.set(Int64(depth)) } }

    func cacheLookup(_ result: String) {
        guard recording else { return }
        cacheLookups[result]?.increment()
    }

    func cacheEntries(_ byVerdict: [String: Int]) {
        guard recording else { return }
        for (verdict, count) in byVerdict {
            registry.makeGauge(descriptor: Self.cacheEntriesName, labels: [("verdict", verdict)]).set(Int64(count))
        }
    }

    /// A verdict database problem, by kind: `corrupt` (moved aside at start),
    /// `open` (running from memory only), `write` (a verdict or rollup not written).
    func cacheError(_ kind: String) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.cacheErrorsName, labels: [("kind", kind)]).increment()
    }

    func reload(succeeded: Bool) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.reloadsName, labels: [("result", succeeded ? "ok" : "error")]).increment()
    }

    func sharedStore(up: Bool) {
        guard recording else { return }
        registry.makeGauge(descriptor: Self.sharedUpName).set(up ? Int64(1) : 0)
    }

    func sharedStoreError(_ kind: String) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.sharedErrorsName, labels: [("kind", kind)]).increment()
    }

    /// A finished exchange with the shared database (`unixTime` 0: none yet).
    func sharedStoreExchanged(unixTime: Int64) {
        guard recording else { return }
        registry.makeGauge(descriptor: Self.sharedExchangeName).set(unixTime)
    }

    func sharedStore(queued: Int) {
        guard recording else { return }
        registry.makeGauge(descriptor: Self.sharedQueuedName).set(Int64(queued))
    }

    func sharedVerdicts(_ direction: String, count: Int) {
        guard recording, count > 0 else { return }
        registry.makeCounter(descriptor: Self.sharedVerdictsName, labels: [("direction", direction)]).increment(by: Int64(count))
    }

    func dnsblLookup(_ result: String) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.dnsblLookupsName, labels: [("result", result)]).increment()
    }

    func probeClaim(_ result: String) {
        guard recording else { return }
        registry.makeCounter(descriptor: Self.probeClaimsName, labels: [("result", result)]).increment()
    }

    /// The Prometheus text exposition.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
