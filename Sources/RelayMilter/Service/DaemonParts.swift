import DNSBL
import DNSBLNIO
import Foundation
import Logging
import MilterKit
import NIOCore
import NIOPosix
import RelayConfig
import RelayProbeNIO
import VerdictStore

/// The daemon's collaborators, each made once from the config with the ones
/// it needs, and the services they run, in the order they start. Making them
/// opens no file and no socket: `MilterDaemon.run` binds the milter socket
/// and drops privileges between making the parts and starting the services.
struct DaemonParts {
    let store: ConfigStore
    let index: VerdictIndex
    let metrics: RelayMetrics
    let stats: StatsCollector
    let verdicts: VerdictDatabase
    let fleet: FleetSync?
    let scheduler: ProbeScheduler
    let factory: RelaySessionFactory
    let history: StatsHistory
    let zonePublisher: ZonePublisher
    /// Registered tests' windows; nil when `[registered]` is off.
    let registeredWindows: RegisteredWindows?

    init(config: RelayMilterConfig, logger: Logger) {
        store = ConfigStore(config)
        index = VerdictIndex()
        metrics = RelayMetrics(version: RelayMilterVersion.current, recording: config.metrics.enabled)
        stats = StatsCollector(retentionHours: config.stats.retentionHours)
        // One event-loop thread carries every open-relay test: they are all
        // waiting on the network, and NIO multiplexes them. It is never shut
        // down: tests in flight at stop end with the process.
        let probeLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // A burst of tests (a thousand hosts connecting at once) must not slow
        // the callbacks the MTA is waiting on (BENCHMARKS.md, section 4).
        ThreadPriority.lower(probeLoops)
        let shared = config.cache.backend == .postgresql
        verdicts = VerdictDatabase(path: config.cache.path, queuesForSharing: shared, index: index, metrics: metrics, logger: logger)
        fleet = shared ? FleetSync(
            settings: config.cache.postgresql, probeTotalTimeoutSeconds: config.probe.totalTimeoutSeconds,
            retentionHours: config.stats.retentionHours, exchangesRegisteredTests: config.registered.enabled, index: index,
            database: verdicts, eventLoop: probeLoops.next(), metrics: metrics, logger: logger
        ) : nil
        let store = store
        scheduler = ProbeScheduler(
            prober: SMTPProber(group: probeLoops), index: index, database: verdicts, fleet: fleet,
            followUps: config.registered.enabled ? RegisteredFollowUps(
                database: verdicts, fleet: fleet, store: store, sender: RegisteredSender(group: probeLoops), metrics: metrics, logger: logger
            ) : nil,
            logger: logger, metrics: metrics
        )
        let registered: DatabaseArrivals? = config.registered.enabled ? DatabaseArrivals(
            path: config.cache.path, database: verdicts, fleet: fleet, index: index,
            ttlSeconds: { store.snapshot.cache.ttl(for: .open) }, metrics: metrics, logger: logger
        ) : nil
        factory = RelaySessionFactory(
            store: store, logger: logger, registered: registered,
            trapEvidence: config.trap.enabled ? TrapEvidence(database: verdicts, index: index) : nil,
            hostVerdicts: HostVerdicts(
                index: index, scheduler: scheduler, metrics: metrics,
                dnsbl: Self.dnsblLookups(config.dnsbl, group: probeLoops, metrics: metrics, logger: logger)
            ),
            metrics: metrics, stats: stats
        )
        history = StatsHistory(stats: stats, database: verdicts, logger: logger)
        zonePublisher = ZonePublisher(store: store, index: index, logger: logger)
        registeredWindows = config.registered.enabled
            ? RegisteredWindows(database: verdicts, fleet: fleet, index: index, store: store, metrics: metrics, logger: logger, interval: .seconds(10)) : nil
    }

    /// The services, in start order; `ServiceGraph` stops them in the reverse
    /// one, each while everything it uses still runs.
    func services(milter: Milter, signals: SignalPipe, logger: Logger) -> [DaemonService] {
        let (verdicts, fleet, history, scheduler, zonePublisher) = (verdicts, fleet, history, scheduler, zonePublisher)
        var metricsServer: MetricsServer?
        var services = [DaemonService(name: "verdict database", start: { verdicts.open() }, stop: {})]
        if let fleet {
            // At stop, what the shared database does not take stays queued in the embedded one.
            services.append(.task("fleet sync", priority: .background, { await fleet.run() },
                                  beforeCancel: { fleet.flushBeforeStop(timeout: .seconds(3)) }))
        }
        services += [
            // The counts from before a restart are loaded before any session
            // adds to them; a clean stop keeps the counts since the last write too.
            .task("statistics history", { await history.writeContinually() },
                  beforeStart: { history.load() }, afterCancel: { history.writeAll() }),
            .task("zone publishing", priority: .background, { await zonePublisher.run() }),
        ]
        if let registeredWindows {
            services.append(.task("registered test windows", priority: .background, { await registeredWindows.run() }))
        }
        services += [
            DaemonService(name: "metrics listener", start: {
                metricsServer = startMetricsServer(store.snapshot.metrics, logger: logger)
            }, stop: { metricsServer?.close() }),
            // Tests run at low priority (Dispatch gives such tasks low-priority
            // threads): the milter's callbacks come first. At stop no new test starts.
            .task("open-relay tests", priority: .background, { await scheduler.run() }, beforeCancel: { scheduler.stop() }),
            DaemonService(name: "milter", start: {
                milter.run { succeeded in
                    // 0 is never a signal number: it tells the daemon the milter ended by itself.
                    signals.post(succeeded ? 0 : -1)
                }
            }, stop: { milter.join() }),
        ]
        return services
    }

    /// The trap's evidence in the report's window: one read of the database, on
    /// the metrics listener's thread, behind the verdict writes.
    private static func trapStats(_ report: StatsReport, verdicts: VerdictDatabase, detail: Bool) -> StatsReport.Trap? {
        let hours = max(1, (report.sinceSeconds + 3599) / 3600)
        guard let summary = (try? verdicts.withStore { try $0.trapSummary(hours: hours, top: detail ? 10 : 0) }) ?? nil else { return nil }
        let ranked = { (list: [(key: String, count: Int)]) in list.map { StatsReport.Ranked(key: $0.key, count: $0.count, overcount: 0) } }
        return StatsReport.Trap(attempts: summary.attempts, perHour: summary.perHour, topClients: ranked(summary.topClients),
                                topDomains: ranked(summary.topDomains))
    }

    /// The DNS blocklist lookups, asking `[dnsbl] resolver` or the system's
    /// first nameserver; nil (and said) when there is neither.
    private static func dnsblLookups(
        _ settings: RelayMilterConfig.DNSBL, group: MultiThreadedEventLoopGroup, metrics: RelayMetrics, logger: Logger
    ) -> DNSBLLookups? {
        let host = settings.resolverHost
            ?? (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)).flatMap(ResolvConf.firstNameserver).map { "\($0)" }
        guard let host, let server = try? SocketAddress(ipAddress: host, port: settings.resolverPort) else {
            if !settings.zones.isEmpty {
                logger.error("no DNS server to ask the DNS blocklists: set [dnsbl] resolver; no list is asked", metadata: [
                    "dnsbl.zones": "\(settings.zones.joined(separator: ","))",
                ])
            }
            return nil
        }
        let resolver = DNSResolver(server: server, group: group, timeout: .seconds(Int64(settings.timeoutSeconds)))
        if !settings.zones.isEmpty {
            logger.info("DNS blocklists asked", metadata: ["dnsbl.zones": "\(settings.zones.joined(separator: ","))", "dnsbl.resolver": "\(server)"])
        }
        return DNSBLLookups(resolver: resolver, metrics: metrics, logger: logger)
    }

    /// Serves `/metrics` when enabled. A listener that cannot bind is logged and
    /// skipped: the milter itself matters more than its dashboard.
    private func startMetricsServer(_ settings: RelayMilterConfig.Metrics, logger: Logger) -> MetricsServer? {
        guard settings.enabled else { return nil }
        let (metrics, index, verdicts, countsRegisteredTests) = (metrics, index, verdicts, registeredWindows != nil)
        let trapEnabled = store.snapshot.trap.enabled
        do {
            let server = try MetricsServer(
                host: settings.host, port: settings.port, group: MultiThreadedEventLoopGroup(numberOfThreads: 1), metrics: metrics,
                stats: stats, statsDetail: settings.statsDetail,
                completeStats: { report in
                    report.cacheByVerdict = index.countByVerdict.filter { $0.value > 0 }
                    if trapEnabled { report.trap = Self.trapStats(report, verdicts: verdicts, detail: settings.statsDetail) }
                    guard countsRegisteredTests else { return }
                    // One grouped read of the tests table, on the listener's own thread.
                    let since = Date().addingTimeInterval(-TimeInterval(report.sinceSeconds))
                    let counts = (try? verdicts.withStore { try $0.registeredTestCounts(since: since) }) ?? nil
                    report.registeredTests = Dictionary(uniqueKeysWithValues: (counts ?? [:]).map { ($0.key.rawValue, $0.value) })
                },
                beforeScrape: { metrics.cacheEntries(index.countByVerdict) }
            )
            logger.info("metrics listening", metadata: ["metrics.listen": "\(settings.host):\(settings.port)"])
            return server
        } catch {
            logger.error("cannot serve metrics; running without", metadata: ["metrics.listen": "\(settings.host):\(settings.port)", "error": "\(error)"])
            return nil
        }
    }
}
