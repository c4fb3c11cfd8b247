import Foundation
import ArgumentParser
import RelayConfig
import RelayMilter
import RelayProbe
import RelayProbeNIO

@main
struct RelayMilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-milter",
        abstract: "A milter that stops your MTA from relaying for strangers.",
        discussion: ManualText.discussion,
        version: RelayMilterVersion.current,
        subcommands: [Run.self, CheckConfig.self, PostfixSnippetCommand.self, Decide.self, Probe.self, Cache.self, Trap.self, Stats.self],
        defaultSubcommand: Run.self
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The config file.", valueName: "path"))
    var config: String = RelayMilterConfig.defaultPath

    /// The config, or exit 78 with the file:line error.
    func load() throws -> RelayMilterConfig {
        do {
            return try ConfigLoader.load(path: config)
        } catch {
            printToStandardError("relay-milter: \(error)")
            throw ExitCode(78)
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the MTA in the foreground (the default). SIGHUP reloads the config; SIGTERM stops."
    )

    @OptionGroup var configOption: ConfigOption

    @Option(help: ArgumentHelp("Listen here instead of [milter] socket: unix:/path, inet:PORT@HOST or inet6:PORT@HOST.", valueName: "spec"))
    var socket: String?

    @Option(name: .customLong("pid-file"), help: ArgumentHelp("Write the process id here.", valueName: "path"))
    var pidFile: String?

    func run() throws {
        let daemon = MilterDaemon(options: .init(configPath: configOption.config, socketOverride: socket, pidFileOverride: pidFile))
        let code = daemon.run()
        if code != 0 { throw ExitCode(code) }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the config file and print the effective config."
    )

    @OptionGroup var configOption: ConfigOption

    @Flag(help: "Fail (exit 78) on warnings too.")
    var strict = false

    func run() throws {
        let config = try configOption.load()
        for warning in config.warnings {
            printToStandardError("relay-milter: warning: \(configOption.config): \(warning)")
        }
        if strict && !config.warnings.isEmpty { throw ExitCode(78) }
        print("# \(configOption.config): OK")
        print(ConfigRenderer.render(config), terminator: "")
    }
}

struct PostfixSnippetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postfix-snippet",
        abstract: "Print the main.cf lines that attach Postfix to relay-milter as configured.",
        discussion: "With --trap, the master.cf service of the trap listener a [trap] config serves instead."
    )

    @OptionGroup var configOption: ConfigOption

    @Flag(help: "The master.cf service of a trap listener (the config must have [trap] enabled).")
    var trap = false

    @Option(help: ArgumentHelp("The trap service's [address:]port, as master.cf's first column.", valueName: "listen"))
    var listen = "2526"

    func run() throws {
        let config = try configOption.load()
        guard trap else {
            print(PostfixSnippet.render(config, configPath: configOption.config), terminator: "")
            return
        }
        guard config.trap.enabled else {
            throw ValidationError("\(configOption.config) has no [trap] enabled = true: a trap service must be served by a trap process")
        }
        print(PostfixSnippet.renderTrap(config, configPath: configOption.config, listen: listen), terminator: "")
    }
}

struct Decide: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain, offline, what relay-milter would do with a transaction.",
        discussion: "Runs the same policy code as the milter, one line (or JSON object) per recipient."
    )

    @OptionGroup var configOption: ConfigOption

    @Option(help: ArgumentHelp("The connecting client's IP address.", valueName: "ip"))
    var client: String

    @Option(help: ArgumentHelp("The HELO name (shown only; the policy ignores it).", valueName: "name"))
    var helo: String?

    @Option(help: ArgumentHelp("The SASL login, as if the client authenticated.", valueName: "user"))
    var auth: String?

    @Option(help: ArgumentHelp("The envelope sender (MAIL FROM).", valueName: "address"))
    var from: String

    @Option(help: ArgumentHelp("An envelope recipient; repeat for more.", valueName: "address"))
    var rcpt: [String]

    @Option(name: .customLong("rcpt-mailer"), help: ArgumentHelp("The MTA's {rcpt_mailer} for every recipient.", valueName: "transport"))
    var rcptMailer: String?

    @Option(name: .customLong("rcpt-host"), help: ArgumentHelp("The MTA's {rcpt_host} for every recipient.", valueName: "host"))
    var rcptHost: String?

    @Option(name: .customLong("rcpt-addr"), help: ArgumentHelp("The MTA's {rcpt_addr} for every recipient.", valueName: "address"))
    var rcptAddr: String?

    @Option(help: ArgumentHelp("Whose macros --rcpt-mailer, --rcpt-host and --rcpt-addr are: postfix, or sendmail (after its virtusertable).", valueName: "mta"))
    var mta: String = MTAKind.postfix.rawValue

    @Flag(help: "One JSON object per recipient, one per line.")
    var json = false

    func validate() throws {
        guard !rcpt.isEmpty else { throw ValidationError("Give at least one --rcpt.") }
        guard MTAKind(rawValue: mta) != nil, mta != MTAKind.unknown.rawValue else {
            throw ValidationError("--mta must be postfix or sendmail, not \"\(mta)\".")
        }
    }

    func run() throws {
        let config = try configOption.load()
        let request = DecideRequest(
            client: client, helo: helo, auth: auth, from: from, recipients: rcpt,
            rcptMailer: rcptMailer, rcptHost: rcptHost, rcptAddr: rcptAddr, mta: MTAKind(rawValue: mta) ?? .postfix
        )
        let report: DecideReport
        do {
            report = try DecideReport(request, config: config)
        } catch {
            printToStandardError("relay-milter: \(error)")
            throw ExitCode.validationFailure
        }
        print(json ? report.jsonLines() : report.text(), terminator: "")
    }
}

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Test a host for open relaying now, in anonymous mode (SMTP commands only, never a message).",
        discussion: "Prints each test's MAIL, RCPT and DATA replies and the verdict. DATA is sent only after an accepted RCPT, and the connection is closed at its 354 reply without sending content."
    )

    @OptionGroup var configOption: ConfigOption

    @Argument(help: ArgumentHelp("The host to test: IP, IP:PORT or [IPv6]:PORT (the port defaults to [probe] port).", valueName: "host"))
    var host: String

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Flag(name: .customLong("no-store"), help: "Do not write the verdict to the cache database.")
    var noStore = false

    @Option(help: ArgumentHelp("The local address the tests come from (overrides [probe] source_address).", valueName: "ip"))
    var source: String?

    @Flag(help: "A registered test of a host you answer for: relay one labelled message to a one-time alias of yours and wait for it to come back (see [registered]).")
    var registered = false

    @Option(help: ArgumentHelp("With --registered: how long to wait for the message (at most [registered] window).", valueName: "duration"))
    var wait: String = "5m"

    func run() throws {
        var config = try configOption.load()
        let target: ProbeTarget
        do {
            if let source { try ProbeCommand.setSource(source, in: &config) }
            target = try ProbeCommand.target(host, config: config.probe)
        } catch {
            printToStandardError("relay-milter: \(error)")
            throw ExitCode.validationFailure
        }
        if registered {
            let waitSeconds: Int
            do { waitSeconds = try DurationText.seconds(wait) } catch {
                printToStandardError("relay-milter: --wait: \(error)")
                throw ExitCode.validationFailure
            }
            do {
                let test = try RegisteredTestCommand.run(target, config: config, waitSeconds: waitSeconds) { line in
                    if !json { printToStandardError("relay-milter: \(line)") }
                }
                print(json ? RegisteredTestCommand.json(test) : RegisteredTestCommand.text(test), terminator: "")
            } catch {
                printToStandardError("relay-milter: \(error)")
                throw ExitCode.failure
            }
            return
        }
        if let warning = ProbeCommand.sourceWarning(target: target.address, source: target.sourceAddress) {
            printToStandardError("relay-milter: warning: \(warning)")
        }
        let report = ProbeCommand.run(target, config: config, progress: json ? nil : ProbeProgressLine.forTerminal(target: "\(target)"))
        print(json ? ProbeReportFormatter.json(report, target: target) : ProbeReportFormatter.text(report, target: target), terminator: "")
        if !noStore {
            do {
                try ProbeCommand.store(report, target: target, config: config)
            } catch {
                printToStandardError("relay-milter: verdict not stored: \(error)")
                throw ExitCode(74)
            }
        }
    }
}

/// Opens the configured database as `open` makes it (exit 74 when it
/// cannot be opened) and runs `body` on it, printing its output or its error.
func performOnDatabase<Commands>(_ option: ConfigOption, open: (RelayMilterConfig) throws(CacheCommands.Failure) -> Commands,
                                 _ body: (Commands) throws -> String) throws {
    let config = try option.load()
    let commands: Commands
    do {
        commands = try open(config)
    } catch {
        printToStandardError("relay-milter: \(error)")
        throw ExitCode(74)
    }
    do {
        print(try body(commands), terminator: "")
    } catch {
        printToStandardError("relay-milter: \(error)")
        throw ExitCode.failure
    }
}

struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read and edit the open-relay verdict cache (also while the daemon runs; it reads changes within 10 seconds).",
        subcommands: [List.self, Show.self, Forget.self, Set.self, PurgeExpired.self, Export.self]
    )

    /// Opens the configured cache and runs `body` on it, printing its output or its error.
    static func perform(_ option: ConfigOption, _ body: (CacheCommands) throws -> String) throws {
        try performOnDatabase(option, open: CacheCommands.init(config:), body)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List cached verdicts, newest first.")
        @OptionGroup var configOption: ConfigOption
        @Option(help: ArgumentHelp("Only this verdict.", valueName: "verdict")) var verdict: String?
        @Flag(help: "One JSON object per host.") var json = false
        func run() throws {
            try Cache.perform(configOption) { cache in try cache.list(verdict: verdict, json: json) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one host's record.")
        @OptionGroup var configOption: ConfigOption
        @Argument(help: ArgumentHelp("The host's IP address.", valueName: "ip")) var ip: String
        func run() throws {
            try Cache.perform(configOption) { cache in try cache.show(ip) }
        }
    }

    struct Forget: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a host (it is tested again at its next connection).")
        @OptionGroup var configOption: ConfigOption
        @Argument(help: ArgumentHelp("The host's IP address.", valueName: "ip")) var ip: String
        func run() throws {
            try Cache.perform(configOption) { cache in try cache.forget(ip) }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List or exempt a host by hand: e.g. `set 192.0.2.7 open` or `set 192.0.2.8 closed --ttl 365d`.")
        @OptionGroup var configOption: ConfigOption
        @Argument(help: ArgumentHelp("The host's IP address.", valueName: "ip")) var ip: String
        @Argument(help: ArgumentHelp("The verdict to record.", valueName: "verdict")) var verdict: String
        @Option(help: ArgumentHelp("How long it holds (30m, 6h, 7d); the verdict's TTL by default.", valueName: "duration")) var ttl: String?
        func run() throws {
            try Cache.perform(configOption) { cache in try cache.set(ip, verdict: verdict, ttl: ttl) }
        }
    }

    struct PurgeExpired: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "purge-expired", abstract: "Delete expired records.")
        @OptionGroup var configOption: ConfigOption
        func run() throws {
            try Cache.perform(configOption) { cache in try cache.purgeExpired() }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every record as CSV or JSON lines, or the open relays as an rbldnsd zone (a DNSBL)."
        )
        @OptionGroup var configOption: ConfigOption
        @Option(help: "csv, json, rbldnsd (an ip4set dataset of the IPv4 hosts with a bad verdict) or rbldnsd-ipv6 (an ip6trie dataset of the IPv6 ones).")
        var format: String = "csv"
        @Option(help: ArgumentHelp("rbldnsd: how long resolvers may keep an answer.", valueName: "duration"))
        var ttl: String = "1h"
        @Option(help: ArgumentHelp("Replace this file (atomically) instead of printing.", valueName: "path"))
        var output: String?
        func run() throws {
            guard let parsed = CacheCommands.ExportFormat(rawValue: format) else {
                throw ValidationError("--format must be csv, json, rbldnsd or rbldnsd-ipv6")
            }
            guard let seconds = try? DurationText.seconds(ttl), seconds > 0 else {
                throw ValidationError("--ttl \"\(ttl)\" is not a duration such as 15m or 1h")
            }
            try Cache.perform(configOption) { cache in
                let text = try cache.export(parsed, dnsTTL: seconds)
                guard let output else { return text }
                try AtomicFile.write(text, to: output)
                return ""
            }
        }
    }
}

struct Trap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the relay attempts a trap listener recorded ([trap]): who tried, from where, for which domains.",
        subcommands: [List.self, Show.self, Export.self]
    )

    /// Opens the configured database and runs `body` on it, printing its output or its error.
    static func perform(_ option: ConfigOption, _ body: (TrapCommands) throws -> String) throws {
        try performOnDatabase(option, open: TrapCommands.init(config:), body)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List recorded relay attempts, newest first.")
        @OptionGroup var configOption: ConfigOption
        @Option(help: ArgumentHelp("Only this client's attempts.", valueName: "ip")) var client: String?
        @Option(help: ArgumentHelp("Only attempts this recent: 30m, 24h, 7d.", valueName: "duration")) var since: String?
        @Option(help: ArgumentHelp("At most this many.", valueName: "count")) var limit = 100
        @Flag(help: "One JSON object per attempt.") var json = false
        func run() throws {
            let start = try since.map { text -> Date in
                guard let seconds = try? DurationText.seconds(text), seconds > 0 else {
                    throw ValidationError("--since \"\(text)\" is not a duration such as 30m or 24h")
                }
                return Date().addingTimeInterval(-TimeInterval(seconds))
            }
            try Trap.perform(configOption) { trap in try trap.list(client: client, since: start, limit: max(1, limit), json: json) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one recorded attempt.")
        @OptionGroup var configOption: ConfigOption
        @Argument(help: ArgumentHelp("The attempt's id, as list shows it.", valueName: "id")) var id: Int64
        func run() throws {
            try Trap.perform(configOption) { trap in try trap.show(id) }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every recorded attempt, oldest first, as CSV or JSON lines.")
        @OptionGroup var configOption: ConfigOption
        @Option(help: "csv or json.") var format: String = "csv"
        @Option(help: ArgumentHelp("Replace this file (atomically) instead of printing.", valueName: "path")) var output: String?
        func run() throws {
            guard let parsed = TrapCommands.ExportFormat(rawValue: format) else { throw ValidationError("--format must be csv or json") }
            try Trap.perform(configOption) { trap in
                let text = try trap.export(parsed)
                guard let output else { return text }
                try AtomicFile.write(text, to: output)
                return ""
            }
        }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the running daemon what it refused and why: totals, rates, refusals per hour, top clients and destinations."
    )

    @OptionGroup var configOption: ConfigOption

    @Option(help: ArgumentHelp("The window: 30m, 1h, 24h (the daemon keeps one day in memory).", valueName: "duration"))
    var since: String = "1h"

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Flag(help: ArgumentHelp("Every instance sharing the PostgreSQL database ([cache] backend = \"postgresql\"), from the rollups they write there each minute; --since up to the stats retention."))
    var fleet = false

    func run() throws {
        let config = try configOption.load()
        do {
            if fleet {
                let report = try FleetStatsClient.fetch(config: config, since: since)
                print(json ? FleetStatsClient.json(report) : report.text, terminator: "")
                return
            }
            let report = try StatsClient.fetch(config: config, since: since)
            print(json ? StatsClient.json(report) : StatsFormatter.text(report), terminator: "")
        } catch {
            printToStandardError("relay-milter: \(error)")
            throw ExitCode(69)
        }
    }
}
