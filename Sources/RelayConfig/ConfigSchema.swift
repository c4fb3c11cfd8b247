import Logging
import MilterSocket
import RelayPolicy
import RelayProbe

/// One key of the config file, and everything about it in one place: where
/// it lives, how it is read and written back, whether a reload applies it,
/// and what it means. Its default is its value in `RelayMilterConfig.defaults`.
/// The loader, `check-config`'s rendering, the manual's key list and the
/// reload's restart-only warning all walk `ConfigSchema.keys`, so a new key
/// is one row there (and its field and default).
public struct ConfigKey: Sendable {
    public enum Reload: Sendable {
        /// A SIGHUP applies it (new MTA connections see it).
        case applies
        /// Read once at start: a change waits for a restart.
        case atRestart
    }

    /// The table, `milter` or `cache.postgresql`.
    public let section: String
    public let name: String
    public let reload: Reload
    /// One line for the manual.
    public let doc: String
    let read: @Sendable (_ section: inout Section, _ config: inout RelayMilterConfig) throws(ConfigError) -> Void
    let write: @Sendable (RelayMilterConfig) -> String

    /// `milter.socket`, as errors and warnings name it.
    public var path: String { "\(section).\(name)" }

    /// The key's value in `config`, as TOML.
    public func value(in config: RelayMilterConfig) -> String { write(config) }

    /// A key kept in one field of the config, read and written by `codec`.
    static func field<Value>(
        _ section: String, _ name: String, _ field: WritableKeyPath<RelayMilterConfig, Value> & Sendable,
        _ codec: ConfigCodec<Value>, _ reload: Reload = .applies, _ doc: String
    ) -> ConfigKey {
        ConfigKey(section: section, name: name, reload: reload, doc: doc, read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            config[keyPath: field] = try codec.read(&table, name, config[keyPath: field])
        }, write: { config in codec.write(config[keyPath: field]) })
    }
}

public enum ConfigSchema {
    /// The tables in the order `check-config` prints them, with what each is for.
    public static let sections: [(name: String, doc: String)] = [
        ("milter", "where the MTA connects"),
        ("service", "the process"),
        ("metrics", "Prometheus /metrics and /stats"),
        ("stats", "the history `relay-milter stats` reads"),
        ("publish", "the open relays as an rbldnsd zone, a DNSBL"),
        ("dnsbl", "DNS blocklists asked about clients"),
        ("policy", "the relay rules"),
        ("probe", "open-relay tests of connecting hosts"),
        ("cache", "the verdict database (sqlite, or postgresql: shared by a fleet)"),
        ("cache.ttl", "how long each verdict is trusted"),
        ("cache.postgresql", "the fleet's shared database"),
        ("enforcement", "mail from hosts with a bad verdict, at MAIL FROM"),
        ("actions", "what each refusal reason does"),
        ("reply", "the texts of refusals and the tag header"),
        ("registered", "registered relay tests of hosts you answer for (off by default)"),
        ("trap", "a listener that looks like an open relay and keeps the evidence (off by default; a process of its own)"),
    ]

    /// Every key, table by table, in the order of `sections`.
    public static let keys: [ConfigKey] = milter + service + metrics + stats + publish + dnsbl + policy + probe + cache
        + cacheTTL + cachePostgreSQL + enforcement + actions + reply + registered + trap

    /// The restart-only keys whose value differs between two configs, by path.
    public static func restartOnlyChanges(from old: RelayMilterConfig, to new: RelayMilterConfig) -> [String] {
        keys.filter { $0.reload == .atRestart && $0.value(in: old) != $0.value(in: new) }.map(\.path)
    }

    private static let milter: [ConfigKey] = [
        ConfigKey(section: "milter", name: "socket", reload: .atRestart, doc: "unix:/path, inet:PORT@HOST or inet6:PORT@HOST (no HOST: loopback)",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            let text = try table.string("socket", default: config.milter.socket.description)
            do { config.milter.socket = try SocketSpec(parsing: text) } catch { throw table.error("socket", "\(error)") }
        }, write: { TOMLText.quoted($0.milter.socket.description) }),
        ConfigKey(section: "milter", name: "socket_mode", reload: .atRestart, doc: "permissions of a unix socket, octal",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            let mode = try table.string("socket_mode", default: octal(config.milter.socketMode))
            guard mode.count <= 4, let bits = UInt32(mode, radix: 8), bits <= 0o777 else {
                throw table.error("socket_mode", "expected an octal mode such as \"0660\", got \"\(mode)\"")
            }
            config.milter.socketMode = bits
        }, write: { TOMLText.quoted(octal($0.milter.socketMode)) }),
        .field("milter", "socket_group", \.milter.socketGroup, .optionalString, .atRestart, "group of a unix socket (the MTA's)"),
        .field("milter", "backlog", \.milter.backlog, .int(1...65535), .atRestart, "listen(2) backlog"),
        .field("milter", "timeout", \.milter.timeoutSeconds, .int(1...3600), .atRestart, "seconds libmilter waits for the MTA"),
        ConfigKey(section: "milter", name: "allow_remote_mta", reload: .atRestart, doc: "listen beyond loopback (the protocol has no authentication)",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            config.milter.allowRemoteMTA = try table.bool("allow_remote_mta", default: config.milter.allowRemoteMTA)
            // The last key of [milter]: the socket and this key together.
            if let problem = ConfigLoader.socketExposure(config.milter) { throw table.error("socket", problem) }
        }, write: { "\($0.milter.allowRemoteMTA)" }),
    ]

    private static let service: [ConfigKey] = [
        .field("service", "user", \.service.user, .optionalString, .atRestart, "started as root: run as this user once the socket is open"),
        .field("service", "run_as_root", \.service.runAsRoot, .bool, .atRestart, "started as root with no user: stay root (else refused)"),
        .field("service", "pid_file", \.service.pidFile, .optionalString, .atRestart, "write the process id here"),
        .field("service", "log_level", \.service.logLevel, .choice(Logger.Level.allCases), .atRestart, "trace to critical; decisions log at info and notice"),
        .field("service", "shutdown_timeout", \.service.shutdownTimeoutSeconds, .int(0...600), .applies, "seconds a stop waits for open sessions"),
    ]

    private static let metrics: [ConfigKey] = [
        .field("metrics", "enabled", \.metrics.enabled, .bool, .atRestart, "serve /metrics and /stats"),
        ConfigKey(section: "metrics", name: "listen", reload: .atRestart, doc: "ADDRESS:PORT of the HTTP listener",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            let listen = try table.string("listen", default: hostPort(config.metrics.host, config.metrics.port))
            guard let (host, port) = ConfigLoader.hostAndPort(listen) else {
                throw table.error("listen", "expected ADDRESS:PORT such as \"127.0.0.1:9469\" or \"[::1]:9469\", got \"\(listen)\"")
            }
            (config.metrics.host, config.metrics.port) = (host, port)
        }, write: { TOMLText.quoted(hostPort($0.metrics.host, $0.metrics.port)) }),
        .field("metrics", "stats_detail", \.metrics.statsDetail, .bool, .atRestart, "/stats names the top refused clients and domains"),
    ]

    private static let stats: [ConfigKey] = [
        ConfigKey(section: "stats", name: "retention", reload: .atRestart, doc: "how long hourly counts are kept (whole hours)",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            let seconds = try table.duration("retention", default: config.stats.retentionHours * 3600, range: 86400...DurationText.maximumSeconds)
            guard seconds % 3600 == 0 else {
                throw table.error("retention", "expected whole hours, such as \"7d\" or \"36h\", got \"\(DurationText.text(seconds))\"")
            }
            config.stats.retentionHours = seconds / 3600
        }, write: { TOMLText.quoted(DurationText.text($0.stats.retentionHours * 3600)) }),
    ]

    private static let publish: [ConfigKey] = [
        .field("publish", "rbldnsd_file", \.publish.rbldnsdFile, .optionalString, .applies, "the IPv4 open relays as an rbldnsd ip4set"),
        .field("publish", "rbldnsd_ipv6_file", \.publish.rbldnsdIPv6File, .optionalString, .applies, "the IPv6 ones as an ip6trie"),
        .field("publish", "rbldnsd_interval", \.publish.intervalSeconds, .duration(10...DurationText.maximumSeconds), .applies, "how often the files are rewritten"),
        .field("publish", "rbldnsd_ttl", \.publish.dnsTTLSeconds, .duration(60...DurationText.maximumSeconds), .applies, "the DNS TTL of the zone's answers"),
    ]

    private static let dnsbl: [ConfigKey] = [
        .field("dnsbl", "zones", \.dnsbl.zones, listCodec({ (text: String) throws(BadValue) -> String in
            do { return try DomainName(parsing: text).text } catch { throw BadValue("\"\(text)\": \(error)") }
        }, { $0 }), .applies, "blocklists asked about each untrusted client, in order"),
        ConfigKey(section: "dnsbl", name: "resolver", reload: .atRestart, doc: "the DNS server asked (empty: resolv.conf's first)",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            guard let resolver = try table.optionalString("resolver") else { return }
            if IPAddress(resolver) != nil {
                (config.dnsbl.resolverHost, config.dnsbl.resolverPort) = (resolver, 53)
            } else if let (host, port) = ConfigLoader.hostAndPort(resolver) {
                (config.dnsbl.resolverHost, config.dnsbl.resolverPort) = (host, port)
            } else {
                throw table.error("resolver", "expected an IP address, ADDRESS:PORT or [IPv6]:PORT, got \"\(resolver)\"")
            }
        }, write: { config in TOMLText.quoted(config.dnsbl.resolverHost.map { hostPort($0, config.dnsbl.resolverPort) } ?? "") }),
        .field("dnsbl", "timeout", \.dnsbl.timeoutSeconds, .int(1...30), .atRestart, "seconds per attempt"),
        .field("dnsbl", "action", \.dnsbl.action, .refusal, .applies, "for listed clients: reject, tempfail or tag"),
        .field("dnsbl", "reject_text", \.dnsbl.rejectText, .string, .applies, "{client}, {zone} and {text} are filled in"),
        .field("dnsbl", "tempfail_text", \.dnsbl.tempfailText, .string, .applies, "likewise, for tempfail"),
        .field("dnsbl", "tag_header", \.dnsbl.tagHeader, .headerName, .applies, "the header of tagged mail"),
    ]

    private static let policy: [ConfigKey] = [
        .field("policy", "mode", \.rules.mode, .choice(PolicyMode.allCases), .applies, "enforce, tag-only or log-only"),
        .field("policy", "local_domains", \.policy.localDomains, listCodec(domainPattern, \.description), .applies, "domains delivered here (.example.org: its subdomains)"),
        .field("policy", "relay_domains", \.policy.relayDomains, listCodec(domainPattern, \.description), .applies, "domains this host is backup MX for"),
        .field("policy", "trusted_networks", \.policy.trustedNetworks, listCodec(networkBlock, \.description), .applies, "clients that may relay anywhere"),
        .field("policy", "trust_authenticated", \.policy.trustAuthenticated, .bool, .applies, "SASL-authenticated clients may relay"),
        .field("policy", "local_ip_literals", \.policy.localIPLiterals, listCodec({ (text: String) throws(BadValue) -> IPAddress in
            let inner = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
            guard let address = IPAddress(inner.lowercased().hasPrefix("ipv6:") ? String(inner.dropFirst(5)) : inner) else {
                throw BadValue("\"\(text)\" is not an IP address")
            }
            return address
        }, \.description), .applies, "address literals that mean this host"),
        .field("policy", "sender_must_be_local", \.policy.senderMustBeLocal, .bool, .applies, "trusted clients must also send from a local domain"),
        .field("policy", "local_transports", \.policy.localTransports, setCodec({ (text: String) throws(BadValue) -> String in
            guard !text.isEmpty else { throw BadValue("empty transport name") }
            return text
        }, { $0 }), .applies, "{rcpt_mailer} values that mean delivery here"),
    ]

    private static let probe: [ConfigKey] = [
        .field("probe", "enabled", \.probe.enabled, .bool, .applies, "test connecting hosts"),
        .field("probe", "port", \.probe.port, .int(1...65535), .applies, "the port tested"),
        .field("probe", "helo_name", \.probe.heloName, .stringOrDefault, .applies, "what the tests say in EHLO (empty: the host name)"),
        .field("probe", "test_domain", \.probe.testDomain, ConfigCodec(read: { (table: inout Section, key: String, current: String) throws(ConfigError) in
            let domain = try table.string(key, default: current)
            guard !domain.isEmpty else { return "" }
            do { return try DomainName(parsing: domain).text } catch { throw table.error(key, "\"\(domain)\": \(error)") }
        }, write: TOMLText.quoted), .applies, "the tests' recipient domain: one you control (empty: the first of local_domains)"),
        .field("probe", "recipient", \.probe.recipientLocalPart, .string(localPartProblem), .applies, "the tests' recipient local part"),
        .field("probe", "sender", \.probe.senderLocalPart, .string(localPartProblem), .applies, "the local part of the senders the tests forge"),
        .field("probe", "confirm_with_data", \.probe.confirmWithData, .bool, .applies, "send DATA after an accepted RCPT (never a body)"),
        .field("probe", "pipelining", \.probe.pipelining, .bool, .applies, "group commands where the host offers PIPELINING"),
        .field("probe", "connect_timeout", \.probe.connectTimeoutSeconds, .int(1...300), .applies, "seconds"),
        .field("probe", "command_timeout", \.probe.commandTimeoutSeconds, .int(1...600), .applies, "seconds per reply"),
        .field("probe", "total_timeout", \.probe.totalTimeoutSeconds, .int(1...3600), .applies, "seconds per test"),
        .field("probe", "exclude_networks", \.probe.excludeNetworks, listCodec(networkBlock, \.description), .applies, "never tested (setting it replaces the list)"),
        .field("probe", "allow_loopback", \.probe.allowLoopback, .bool, .applies, "test setups only: allow tests of loopback"),
        .field("probe", "source_address", \.probe.sourceAddress, ConfigCodec(read: { (table: inout Section, key: String, current: IPAddress?) throws(ConfigError) in
            guard let text = try table.optionalString(key) else { return table.has(key) ? nil : current }
            guard let address = IPAddress(text) else { throw table.error(key, "\"\(text)\" is not an IP address") }
            return address
        }, write: { TOMLText.quoted($0.map { "\($0)" } ?? "") }), .applies, "the local address tests come from"),
        .field("probe", "max_in_flight", \.probe.maxInFlight, .int(1...10000), .applies, "tests at once"),
        .field("probe", "queue_size", \.probe.queueSize, .int(1...1_000_000), .applies, "hosts waiting for a test"),
        .field("probe", "network_interval", \.probe.networkIntervalSeconds, .int(0...86400), .applies, "seconds between tests in one /24 or /48"),
    ]

    private static let cache: [ConfigKey] = [
        .field("cache", "path", \.cache.path, .string { $0.hasPrefix("/") ? nil : "expected an absolute path, got \"\($0)\"" }, .atRestart, "the SQLite verdict database"),
        .field("cache", "backend", \.cache.backend, ConfigCodec(read: { (table: inout Section, key: String, current: RelayMilterConfig.Cache.Backend) throws(ConfigError) in
            let backend = try ConfigCodec<RelayMilterConfig.Cache.Backend>.choice(RelayMilterConfig.Cache.Backend.allCases).read(&table, key, current)
            #if !PostgreSQL
            if backend == .postgresql {
                throw table.error(key, "this relay-milter was built without PostgreSQL support (the package trait PostgreSQL); use \"sqlite\"")
            }
            #endif
            return backend
        }, write: { TOMLText.quoted($0.rawValue) }), .atRestart, "sqlite, or postgresql (a fleet)"),
    ]

    /// One key per verdict: a new verdict gets its key with its case.
    private static let cacheTTL: [ConfigKey] = ProbeVerdict.allCases.sorted { $0.rawValue < $1.rawValue }.map { verdict in
        ConfigKey(section: "cache.ttl", name: verdict.rawValue, reload: .applies, doc: "default \(DurationText.text(verdict.defaultTTLSeconds))",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            guard table.has(verdict.rawValue) else { return }
            config.cache.ttlSeconds[verdict] = try table.duration(verdict.rawValue, default: 0, range: 0...DurationText.maximumSeconds)
        }, write: { TOMLText.quoted(DurationText.text($0.cache.ttl(for: verdict))) })
    }

    private static let cachePostgreSQL: [ConfigKey] = [
        .field("cache.postgresql", "host", \.cache.postgresql.host, .string { $0.isEmpty ? "expected a host name or address" : nil }, .atRestart, "the server"),
        .field("cache.postgresql", "port", \.cache.postgresql.port, .int(1...65535), .atRestart, "its port"),
        .field("cache.postgresql", "user", \.cache.postgresql.user, .string, .atRestart, "the database user"),
        .field("cache.postgresql", "database", \.cache.postgresql.database, .string, .atRestart, "the database"),
        .field("cache.postgresql", "password_file", \.cache.postgresql.passwordFile, .optionalAbsolutePath, .atRestart, "its first line is the password"),
        ConfigKey(section: "cache.postgresql", name: "tls", reload: .atRestart, doc: "disable, prefer or require (verified; the default off loopback)",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            // After host: the default depends on it.
            var shared = config.cache.postgresql
            shared.tls = shared.hostIsLoopback ? .prefer : .require
            config.cache.postgresql.tls = try ConfigCodec<RelayMilterConfig.Cache.Shared.TLS>.choice(RelayMilterConfig.Cache.Shared.TLS.allCases)
                .read(&table, "tls", shared.tls)
        }, write: { TOMLText.quoted($0.cache.postgresql.tls.rawValue) }),
        .field("cache.postgresql", "ca_file", \.cache.postgresql.caFile, .optionalAbsolutePath, .atRestart, "the CA of a private server certificate"),
        .field("cache.postgresql", "instance", \.cache.postgresql.instance, ConfigCodec(read: { (table: inout Section, key: String, current: String) throws(ConfigError) in
            let name = try table.optionalString(key) ?? current
            guard !name.isEmpty, name.utf8.count <= 255, name.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                throw table.error(key, "expected a name of printable characters without spaces, got \"\(name)\"")
            }
            return name
        }, write: TOMLText.quoted), .atRestart, "this instance's name in shared rows"),
        .field("cache.postgresql", "poll_interval", \.cache.postgresql.pollIntervalSeconds, .duration(1...3600), .atRestart, "how often other instances' verdicts are looked for"),
        .field("cache.postgresql", "query_timeout", \.cache.postgresql.queryTimeoutSeconds, .duration(1...600), .atRestart, "a hung server: close, reconnect"),
    ]

    private static let enforcement: [ConfigKey] = [
        .field("enforcement", "verdicts", \.enforcement.badVerdicts, setCodec({ (text: String) throws(BadValue) -> ProbeVerdict in
            guard let verdict = ProbeVerdict(rawValue: text) else {
                throw BadValue("\"\(text)\" is not a verdict; expected one of \(ProbeVerdict.spellings)")
            }
            return verdict
        }, \.rawValue), .applies, "verdicts that count as an open relay"),
        .field("enforcement", "action", \.enforcement.action, .refusal, .applies, "for them: reject, tempfail or tag"),
        .field("enforcement", "unknown_action", \.enforcement.unknownAction, .choice([.accept, .tag, .tempfail]), .applies, "for hosts not tested yet"),
        .field("enforcement", "reject_text", \.enforcement.rejectText, .string, .applies, "{client}, {verdict}, {tested}, {evidence}, {failed}, {run}"),
        .field("enforcement", "tempfail_text", \.enforcement.tempfailText, .string, .applies, "likewise, for tempfail"),
        .field("enforcement", "tag_header", \.enforcement.tagHeader, .headerName, .applies, "the header of tagged mail"),
    ]

    /// One key per refusal reason that has an action of its own.
    private static let actions: [ConfigKey] = RelayMilterConfig.actionKeys.map { entry in
        ConfigKey(section: "actions", name: entry.key, reload: .applies, doc: "reject, tempfail or tag",
                  read: { (table: inout Section, config: inout RelayMilterConfig) throws(ConfigError) in
            config.rules.actions[entry.reason] = try ConfigCodec<PolicyAction>.refusal
                .read(&table, entry.key, config.rules.actions[entry.reason] ?? .reject)
        }, write: { TOMLText.quoted(($0.rules.actions[entry.reason] ?? .reject).rawValue) })
    }

    private static let reply: [ConfigKey] = [
        .field("reply", "reject_text", \.replies.rejectText, .string, .applies, "{recipient}, {client}, {reason} are filled in"),
        .field("reply", "tempfail_text", \.replies.tempfailText, .string, .applies, "likewise, for tempfail"),
        .field("reply", "tag_header", \.replies.tagHeader, .headerName, .applies, "the header of tagged mail"),
    ]

    private static let registered: [ConfigKey] = [
        .field("registered", "enabled", \.registered.enabled, .bool, .atRestart, "take test messages back; send them for probe --registered and after unsettled anonymous verdicts"),
        .field("registered", "domain", \.registered.domain, ConfigCodec(read: { (table: inout Section, key: String, current: String) throws(ConfigError) in
            let domain = try table.string(key, default: current)
            guard !domain.isEmpty else { return "" }
            do { return try DomainName(parsing: domain).text } catch { throw table.error(key, "\"\(domain)\": \(error)") }
        }, write: TOMLText.quoted), .applies, "the one-time aliases' domain, one of local_domains (empty: the first)"),
        .field("registered", "prefix", \.registered.prefix, .string { text in
            localPartProblem(text) ?? (text.contains("+") ? "expected no \"+\" (the token follows one), got \"\(text)\"" : nil)
        }, .applies, "the aliases' local part before +token"),
        .field("registered", "window", \.registered.windowSeconds, .duration(60...7 * 86400), .applies, "how long an alias takes its message"),
        .field("registered", "networks", \.registered.networks, listCodec(networkBlock, \.description), .applies,
               "the hosts you answer for: the only ones ever sent a test message"),
        .field("registered", "contact", \.registered.contact, .string { text in
            text.isEmpty || (text.split(separator: "@").count == 2 && localPartProblem(String(text.split(separator: "@")[0])) == nil
                && (try? DomainName(parsing: String(text.split(separator: "@")[1]))) != nil)
                ? nil : "expected an address such as postmaster@example.org, got \"\(text)\""
        }, .applies, "the test message's sender, named in it (empty: postmaster at the domain)"),
        .field("registered", "max_per_host", \.registered.maxPerHostPerDay, .int(1...100), .applies, "tests of one host in 24 hours"),
        .field("registered", "max_per_hour", \.registered.maxPerHour, .int(1...1000), .applies, "tests of all hosts in an hour"),
    ]

    private static let trap: [ConfigKey] = [
        .field("trap", "enabled", \.trap.enabled, .bool, .atRestart, "this process serves a trap listener's milter socket"),
        .field("trap", "daemon_names", \.trap.daemonNames, ConfigCodec(read: { (table: inout Section, key: String, current: [String]) throws(ConfigError) in
            let names = try listCodec({ (text: String) throws(BadValue) -> String in
                guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                    throw BadValue("expected a daemon name without spaces, got \"\(text)\"")
                }
                return text
            }, { $0 }).read(&table, key, current)
            if let problem = trapNamesProblem(names) { throw table.error(key, problem) }
            return names
        }, write: { TOMLText.list($0) }), .atRestart,
               "the MTA's {daemon_name} values that mark the trap listener; no other is ever trapped"),
        .field("trap", "local_mail", \.trap.localMail, .choice(RelayMilterConfig.Trap.LocalMail.allCases), .applies,
               "mail the relay rules allow on the trap listener: deliver, or discard"),
        .field("trap", "reject_text", \.trap.rejectText, .string, .applies,
               "at MAIL, to a trapped host on the other listeners; placeholders as [enforcement] reject_text"),
        .field("trap", "retention", \.trap.retentionSeconds, .duration(3600...3650 * 86400), .applies, "how long a relay attempt's record is kept"),
        .field("trap", "max_records", \.trap.maxRecords, .int(100...10_000_000), .applies, "records kept at most; the oldest go first"),
    ]

    /// Why a trap named so would catch more than its own listener, if it would.
    static func trapNamesProblem(_ names: [String]) -> String? {
        if names.isEmpty { return "expected at least one daemon name: with none, the trap would be every listener" }
        let host = systemHostName().lowercased()
        for name in names {
            if RelayMilterConfig.Trap.stockDaemonNames.contains(name) {
                return "\"\(name)\" is a daemon name every listener of a stock Sendmail has: name the trap's own daemon"
            }
            if name.lowercased() == host || host.hasPrefix(name.lowercased() + ".") || name.lowercased().hasPrefix(host + ".") {
                return "\"\(name)\" is this host's name, which Postfix gives every listener as {daemon_name} (milter_macro_daemon_name = $myhostname): name the trap's own service"
            }
        }
        return nil
    }

    private static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func hostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func localPartProblem(_ value: String) -> String? {
        guard !value.isEmpty, value.utf8.allSatisfy({ $0 > 32 && $0 < 127 && !"<>@%!\"\\,;:()[] ".utf8.contains($0) }) else {
            return "expected a plain local part (letters, digits, dots, hyphens), got \"\(value)\""
        }
        return nil
    }

    private static func domainPattern(_ text: String) throws(BadValue) -> DomainPattern {
        do { return try DomainPattern(parsing: text) } catch { throw BadValue("\"\(text)\": \(error.description)") }
    }

    private static func networkBlock(_ text: String) throws(BadValue) -> NetworkBlock {
        do { return try NetworkBlock(parsing: text) } catch { throw BadValue(error.description) }
    }
}
