import DNSBL
import DNSBLNIO
import Foundation
import Logging
import MilterKit
import MilterSocket
import NIOCore
import NIOPosix
import RelayConfig
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import VerdictStore
#if canImport(Glibc)
import Glibc
#endif

/// `relay-milter run`: opens the socket, drops privileges, serves the MTA on
/// libmilter's threads, and answers signals on the calling (main) thread:
/// SIGHUP reloads the config, SIGTERM and SIGINT stop.
public struct MilterDaemon {
    public struct Options: Sendable {
        public var configPath: String
        public var socketOverride: String?
        public var pidFileOverride: String?

        public init(configPath: String, socketOverride: String?, pidFileOverride: String?) {
            self.configPath = configPath
            self.socketOverride = socketOverride
            self.pidFileOverride = pidFileOverride
        }
    }

    /// The macros the relay rules need, per stage; everything else stays unsent.
    /// `v` names the MTA, which decides what its `{rcpt_addr}` means (MTAMacros).
    static let macros = MacroRequest([
        .connect: ["{client_addr}", "{daemon_name}", "v"],
        .mail: ["{auth_authen}", "{auth_type}", "{mail_addr}", "i"],
        .rcpt: ["{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}", "i"],
        .data: ["i"],
        .eom: ["i"],
    ])

    let options: Options

    public init(options: Options) {
        self.options = options
    }

    /// Loads the config file (at start and at each SIGHUP) and applies the command-line overrides.
    func loadConfig() throws(ConfigError) -> RelayMilterConfig {
        var config = try ConfigLoader.load(path: options.configPath)
        if let socket = options.socketOverride {
            do {
                config.milter.socket = try SocketSpec(parsing: socket)
            } catch {
                throw ConfigError(file: "--socket", line: nil, message: error.description)
            }
            if let problem = ConfigLoader.socketExposure(config.milter) {
                throw ConfigError(file: "--socket", line: nil, message: problem)
            }
        }
        if let pidFile = options.pidFileOverride { config.service.pidFile = pidFile }
        if let refusal = Privileges.rootRefusal(config.service) {
            throw ConfigError(file: options.configPath, line: nil, message: refusal)
        }
        return config
    }

    /// Runs until stopped; returns the process exit code.
    public func run() -> Int32 {
        // Signals first, before any thread exists that could inherit a mask (see SignalPipe).
        let signals: SignalPipe
        do {
            signals = try SignalPipe()
        } catch {
            printToStandardError("relay-milter: \(error)")
            return 71
        }
        let config: RelayMilterConfig
        do {
            config = try loadConfig()
        } catch {
            printToStandardError("relay-milter: \(error)")
            return 78 // EX_CONFIG
        }
        LoggingSystem.bootstrap { label in LogfmtHandler(label: label, level: config.service.logLevel) }
        var logger = Logger(label: "relay-milter")
        logger.logLevel = config.service.logLevel
        logWarnings(of: config, logger: logger)

        let parts = DaemonParts(config: config, logger: logger)
        let milter: Milter
        do {
            milter = try Milter(
                settings: MilterSettings(
                    name: "relay-milter", socket: config.milter.socket, backlog: config.milter.backlog,
                    timeoutSeconds: config.milter.timeoutSeconds, macros: Self.macros,
                    quietStages: RelaySession.quietStages, skippedStages: RelaySession.skippedStages,
                    // A registered test's Received hops are read from its header;
                    // a trap keeps a trapped message's Subject, Message-ID and body hash.
                    readsHeaders: config.registered.enabled || config.trap.enabled, readsBody: config.trap.enabled
                ),
                factory: parts.factory
            )
        } catch {
            logger.critical("cannot start milter", metadata: ["error": "\(error)", "milter.socket": "\(config.milter.socket)"])
            LogWriter.shared.flush()
            return 71
        }
        var socketPath: String?
        if case .unix(let path) = config.milter.socket { socketPath = path }
        do {
            try settleFilesAndDropPrivileges(config, socketPath: socketPath, logger: logger)
        } catch {
            logger.critical("cannot start milter", metadata: ["error": "\(error)"])
            LogWriter.shared.flush()
            return 71
        }
        let services = ServiceGraph(logger: logger)
        for service in parts.services(milter: milter, signals: signals, logger: logger) {
            services.start(service)
        }
        logger.notice("started", metadata: [
            "milter.socket": "\(config.milter.socket)",
            "policy.mode": "\(config.rules.mode.rawValue)",
            "milter.tcp_nodelay_listeners": "\(milter.tcpNoDelayListeners)",
            "config.file": "\(options.configPath)",
        ])

        let exitCode = serveUntilStopped(signals: signals, milter: milter, parts: parts, logger: logger)
        services.stopAll()
        if let socketPath { unlink(socketPath) } // libmilter leaves its unix socket behind
        if let pidFile = config.service.pidFile { unlink(pidFile) }
        logger.notice("stopped", metadata: ["exit.code": "\(exitCode)"])
        LogWriter.shared.flush()
        return exitCode
    }

    /// What must happen as root: the socket's owner and mode, the pid file,
    /// the state directory; then the switch to `[service] user`.
    private func settleFilesAndDropPrivileges(_ config: RelayMilterConfig, socketPath: String?, logger: Logger) throws {
        if let socketPath {
            try Privileges.prepareSocket(path: socketPath, mode: config.milter.socketMode, group: config.milter.socketGroup)
        }
        if let pidFile = config.service.pidFile { try Privileges.writePIDFile(pidFile) }
        try Privileges.prepareStateDirectory(for: config.cache.path, user: config.service.user)
        if try Privileges.drop(to: config.service.user, socketPath: socketPath) {
            logger.info("dropped privileges", metadata: ["service.user": "\(config.service.user ?? "")"])
        }
    }

    /// The exit code when libmilter ended without being asked to (EX_TEMPFAIL).
    static let stoppedByLibmilterExitCode: Int32 = 75

    /// Answers signals until one says stop (or the milter ends by itself);
    /// returns the exit code.
    private func serveUntilStopped(signals: SignalPipe, milter: Milter, parts: DaemonParts, logger: Logger) -> Int32 {
        var waiting: Int32?
        while true {
            let signal = waiting ?? signals.next()
            waiting = nil
            switch signal {
            case SIGHUP:
                // A burst of SIGHUPs is one reload, and a SIGTERM among them
                // is not kept waiting behind the rest.
                waiting = signals.skipWaiting(SIGHUP)
                parts.metrics.reload(succeeded: reload(into: parts.store, logger: logger))
                parts.verdicts.reload()
            case SIGTERM, SIGINT:
                logger.notice("stopping", metadata: ["signal": "\(signal == SIGTERM ? "TERM" : "INT")"])
                // libmilter stops serving every connection at smfi_stop, so the
                // sessions in progress finish first, while new ones are deferred.
                parts.factory.refuseNewSessions()
                waitForOpenSessions(parts.factory.openSessions, timeoutSeconds: parts.store.snapshot.service.shutdownTimeoutSeconds, logger: logger)
                milter.stop()
                return 0
            case 0:
                // We never ask for this (a stop comes through the case above),
                // so it is a failure: exiting non-zero lets the supervisor
                // (systemd's Restart=on-failure) bring the milter back, where
                // an exit 0 would leave the MTA tempfailing every message.
                logger.error("libmilter stopped by itself; exiting so that the service manager restarts relay-milter", metadata: [
                    "exit.code": "\(Self.stoppedByLibmilterExitCode)",
                ])
                return Self.stoppedByLibmilterExitCode
            default:
                logger.error("milter failed; stopping")
                return 1
            }
        }
    }

    /// What check-config warns about, in the log where an admin who never ran it looks.
    private func logWarnings(of config: RelayMilterConfig, logger: Logger) {
        for warning in config.warnings {
            logger.warning("config: \(warning.message)", metadata: ["config.file": "\(options.configPath)", "config.key": "\(warning.key)"])
        }
    }

    @discardableResult
    private func reload(into store: ConfigStore, logger: Logger) -> Bool {
        do {
            let fresh = try loadConfig()
            let old = store.snapshot
            let waiting = ConfigSchema.restartOnlyChanges(from: old, to: fresh)
            if !waiting.isEmpty {
                logger.warning("reload: these changes take effect at restart only", metadata: [
                    "config.file": "\(options.configPath)", "config.keys": "\(waiting.joined(separator: ","))",
                ])
            }
            store.replace(with: fresh)
            logWarnings(of: fresh, logger: logger)
            logger.notice("config reloaded", metadata: ["config.file": "\(options.configPath)", "policy.mode": "\(fresh.rules.mode.rawValue)"])
            return true
        } catch {
            logger.error("config reload refused; keeping the running config", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Gives MTA sessions still in progress a moment to finish: libmilter's
    /// stop does not wait for them, and an abandoned session makes the MTA
    /// apply its milter_default_action to that message.
    private func waitForOpenSessions(_ sessions: OpenSessionCounter, timeoutSeconds: Int, logger: Logger) {
        let openAtStop = sessions.current
        var waitedMillis = 0
        while sessions.current > 0, waitedMillis < timeoutSeconds * 1000 {
            usleep(10_000)
            waitedMillis += 10
        }
        if sessions.current > 0 {
            logger.warning("stopping with MTA sessions still open", metadata: ["sessions.open": "\(sessions.current)"])
        } else {
            logger.info("open sessions finished", metadata: ["sessions.waited": "\(openAtStop)", "wait.ms": "\(waitedMillis)"])
        }
    }
}
