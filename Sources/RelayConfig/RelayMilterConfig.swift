import Logging
#if canImport(Glibc)
import Glibc
#endif
import MilterSocket
import RelayPolicy
import RelayProbe

/// relay-milter's whole configuration, validated. Immutable: a reload builds a
/// new one, and each connection keeps the one it started with.
public struct RelayMilterConfig: Sendable, Equatable {
    public struct Milter: Sendable, Equatable {
        public var socket: SocketSpec
        /// Permission bits for a unix socket; 0660 so the MTA's group can connect.
        public var socketMode: UInt32
        /// Group to own a unix socket (the MTA's group, e.g. `postfix`); nil keeps ours.
        public var socketGroup: String?
        public var backlog: Int32
        public var timeoutSeconds: Int32
        /// Whether an inet socket may listen beyond loopback (an MTA on
        /// another host). The milter protocol has no authentication: whoever
        /// reaches the socket can pose as the MTA, invent clients and have
        /// relay-milter test any host from this one. So it takes this key.
        public var allowRemoteMTA: Bool = false
    }

    public struct Service: Sendable, Equatable {
        /// Run as this user after opening the socket, when started as root.
        public var user: String?
        /// Started as root with no `user`: stay root only when the config says
        /// so in as many words, never by leaving `user` empty.
        public var runAsRoot: Bool = false
        public var pidFile: String?
        public var logLevel: Logger.Level
        /// How long a stop waits for MTA sessions in progress.
        public var shutdownTimeoutSeconds: Int
    }

    public struct Replies: Sendable, Equatable {
        /// Text of the `550 5.7.1` reply; `{recipient}`, `{client}`, `{reason}` are filled in.
        public var rejectText: String
        /// Text of the `451 4.7.1` reply.
        public var tempfailText: String
        /// Header added to tagged messages.
        public var tagHeader: String
    }

    /// Open-relay tests of connecting hosts.
    public struct Probe: Sendable, Equatable {
        public var enabled: Bool
        /// The port tested on each host.
        public var port: Int
        /// What we say in EHLO; the system's host name by default.
        public var heloName: String
        /// A domain you control, not hosted by the hosts tested: the relay
        /// tests' recipient domain. Empty: the first of the local domains
        /// (`RelayMilterConfig.probeTestDomain`).
        public var testDomain: String
        /// Local part of the relay tests' recipient in `testDomain`.
        public var recipientLocalPart: String
        /// Local part of the senders the tests forge at various domains.
        public var senderLocalPart: String
        /// Send DATA after an accepted RCPT (and close at its 354, sending nothing).
        public var confirmWithData: Bool
        /// Group the tests' commands where a host offers PIPELINING (RFC 2920).
        public var pipelining: Bool
        public var connectTimeoutSeconds: Int
        public var commandTimeoutSeconds: Int
        public var totalTimeoutSeconds: Int
        /// Hosts never tested (besides trusted networks).
        public var excludeNetworks: [NetworkBlock]
        /// Tests may target 127.0.0.0/8 and ::1 (for test setups).
        public var allowLoopback: Bool
        /// The local address tests come from (a multi-homed MX); the system chooses when nil.
        public var sourceAddress: IPAddress?
        /// Tests running at once, at most.
        public var maxInFlight: Int
        /// Hosts waiting for a test, at most; more are dropped (and tested at a later connection).
        public var queueSize: Int
        /// Seconds between two tests of hosts in the same /24 (IPv4) or /48 (IPv6).
        public var networkIntervalSeconds: Int

        /// Every block of IANA's IPv4 and IPv6 special-purpose address
        /// registries that is not a host on the Internet (private, shared,
        /// loopback, link-local, documentation, benchmarking, reserved,
        /// protocol assignments, translation and 6to4 relays), and multicast:
        /// a test of an address there reaches no one, or someone on the wrong
        /// side of a network boundary. (IPv4-mapped IPv6 addresses are read
        /// as the IPv4 address they carry, so the IPv4 blocks cover them.)
        public static let defaultExclusions = [
            "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
            "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
            "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
            "::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
            "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
        ].map { try! NetworkBlock(parsing: $0) }
    }

    /// The persistent verdict cache.
    public struct Cache: Sendable, Equatable {
        public enum Backend: String, Sendable, CaseIterable {
            /// The embedded database alone.
            case sqlite
            /// Verdicts shared by a fleet through PostgreSQL, with the embedded
            /// database as this instance's copy and its queue while the server is away.
            case postgresql
        }

        /// The SQLite file; its directory is created if missing.
        public var path: String
        /// How long each verdict is trusted, in seconds: every verdict, the
        /// verdict's own default unless `[cache.ttl]` names it.
        public var ttlSeconds: [ProbeVerdict: Int]
        public var backend: Backend
        /// Used when `backend` is `postgresql`.
        public var postgresql: Shared

        public static let defaultTTLs = Dictionary(uniqueKeysWithValues: ProbeVerdict.allCases.map { ($0, $0.defaultTTLSeconds) })

        /// Seconds a verdict is trusted.
        public func ttl(for verdict: ProbeVerdict) -> Int { ttlSeconds[verdict] ?? verdict.defaultTTLSeconds }

        /// The shared PostgreSQL database (`[cache.postgresql]`).
        public struct Shared: Sendable, Equatable {
            public enum TLS: String, Sendable, CaseIterable {
                case disable, prefer, require
            }

            public var host: String
            public var port: Int
            public var user: String
            public var database: String
            /// Loopback hosts default to `prefer`, others to `require` (verified:
            /// `prefer` lets anyone on the path strip TLS and rewrite verdicts).
            public var tls: TLS
            /// PEM CA certificates for verifying the server (a private CA); the system's otherwise.
            public var caFile: String? = nil

            /// Whether `host` is this machine (an address in 127/8, ::1, localhost).
            public var hostIsLoopback: Bool {
                if host == "localhost" { return true }
                guard let address = IPAddress(host) else { return false }
                return ["127.0.0.0/8", "::1/128"].contains { (try? NetworkBlock(parsing: $0))?.contains(address) == true }
            }
            /// The password is read from this file at each connection, never kept in the config.
            public var passwordFile: String?
            /// This instance's name in the shared rows (claims, statistics).
            public var instance: String
            /// Seconds between two looks for other instances' verdicts when no
            /// notification came (notifications make it sooner).
            public var pollIntervalSeconds: Int
            /// Seconds a query may go unanswered before the connection is
            /// closed and opened again (a server that hangs rather than fails).
            public var queryTimeoutSeconds: Int
        }
    }

    /// What happens to mail from hosts with a bad verdict, at MAIL FROM.
    public struct Enforcement: Sendable, Equatable {
        /// Verdicts that count as an open relay.
        public var badVerdicts: Set<ProbeVerdict>
        /// For listed hosts: reject, tempfail or tag.
        public var action: PolicyAction
        /// For hosts not tested yet: accept (and test in the background), tag, or
        /// tempfail until tested; likewise for clients whose address the MTA did not give.
        public var unknownAction: PolicyAction
        /// `{client}`, `{verdict}`, `{tested}`, `{evidence}`, `{failed}`, `{run}` are filled in.
        public var rejectText: String
        public var tempfailText: String
        public var tagHeader: String
    }

    /// The Prometheus endpoint.
    public struct Metrics: Sendable, Equatable {
        public var enabled: Bool
        /// Address and port of the HTTP listener serving `/metrics`: loopback by default.
        public var host: String
        public var port: Int
        /// Whether `/stats` names the top refused clients, their networks and
        /// the domains they tried: anyone who can reach the listener reads it.
        public var statsDetail: Bool = false
    }

    /// Statistics history (`relay-milter stats`).
    public struct Stats: Sendable, Equatable {
        /// How long hourly rollups stay in the database; minute rollups stay one day.
        public var retentionHours: Int
    }

    /// DNS blocklists asked about connecting clients: a listing is a verdict
    /// source of its own, with its own action.
    public struct DNSBL: Sendable, Equatable {
        /// Zones asked, in order; the first that lists a client counts. Empty: none asked.
        public var zones: [String]
        /// The DNS server asked (a resolver, or rbldnsd itself); nil: the
        /// first nameserver in /etc/resolv.conf.
        public var resolverHost: String?
        public var resolverPort: Int
        /// Per attempt; a query is tried twice.
        public var timeoutSeconds: Int
        /// For listed clients: reject, tempfail or tag.
        public var action: PolicyAction
        /// `{client}`, `{zone}` and `{text}` (the list's TXT) are filled in.
        public var rejectText: String
        public var tempfailText: String
        public var tagHeader: String
    }

    /// The open relays published as an rbldnsd zone (a DNSBL), rewritten on a schedule.
    public struct Publish: Sendable, Equatable {
        /// The file to keep up to date with the IPv4 open relays (an
        /// `ip4set` dataset); nil: none is written.
        public var rbldnsdFile: String?
        /// The same for the IPv6 ones (an `ip6trie` dataset); nil: none is written.
        public var rbldnsdIPv6File: String?
        public var intervalSeconds: Int
        /// The DNS TTL of the zone's answers.
        public var dnsTTLSeconds: Int
    }

    /// Registered relay tests: a real message through a host the admin
    /// answers for, to a one-time alias of theirs, confirmed when it comes back.
    public struct Registered: Sendable, Equatable {
        /// Whether the daemon takes arrivals for the aliases (and `probe --registered` may run).
        public var enabled: Bool
        /// The aliases' domain, one of the local domains; empty: the first of them.
        public var domain: String
        /// The aliases' local part before `+token`.
        public var prefix: String
        /// How long an alias takes its message after the test starts.
        public var windowSeconds: Int
        /// The hosts the admin answers for: the only ones ever sent a message.
        public var networks: [NetworkBlock]
        /// The admin's address, the test message's sender; empty: postmaster at the aliases' domain.
        public var contact: String
        /// Tests of one host in 24 hours, at most.
        public var maxPerHostPerDay: Int
        /// Tests of all hosts in an hour, at most.
        public var maxPerHour: Int
    }

    /// Trap mode: a listener set aside to look like an open relay, whose
    /// relay attempts are taken, recorded and discarded (issue 35). Served by
    /// a relay-milter process of its own (see docs/DESIGN.md).
    public struct Trap: Sendable, Equatable {
        /// What a trap session does with mail it would deliver anyway (a
        /// local recipient, or a client the relay rules trust).
        public enum LocalMail: String, Sendable, CaseIterable {
            /// Handled as on any listener: delivered.
            case deliver
            /// Taken and discarded like a relay attempt, but not recorded.
            case discard
        }

        public var enabled: Bool
        /// The MTA's `{daemon_name}` values that mark the trap listener
        /// (Postfix: the service's `milter_macro_daemon_name`).
        public var daemonNames: [String]
        public var localMail: LocalMail
        /// The reply at MAIL to a trapped host on the production listeners.
        public var rejectText: String
        /// How long a relay attempt's record is kept.
        public var retentionSeconds: Int
        /// How many records are kept at most; the oldest go first.
        public var maxRecords: Int

        /// Daemon names every listener of a stock MTA has: a trap named by one
        /// would be every listener. Sendmail names its daemons these; Postfix's
        /// `{daemon_name}` is `$myhostname` unless a service sets it.
        public static let stockDaemonNames = ["MTA", "MTA-v4", "MTA-v6", "MSA", "MSP", "MSP-v4"]
    }

    public var milter: Milter
    public var service: Service
    public var metrics: Metrics
    public var stats: Stats
    public var publish: Publish
    public var dnsbl: DNSBL
    public var probe: Probe
    public var cache: Cache
    public var enforcement: Enforcement
    public var policy: PolicyConfig
    public var rules: ActionRules
    public var replies: Replies
    public var registered: Registered
    public var trap: Trap

    public static let defaultPath = "/etc/relay-milter/relay-milter.toml"

    /// The actions for host decisions, from `[enforcement]`, under the global mode.
    public var hostRules: ActionRules {
        ActionRules(
            actions: [
                .openRelayHost: enforcement.action, .untestedHost: enforcement.unknownAction,
                .unidentifiedHost: enforcement.unknownAction, .dnsblListed: dnsbl.action,
            ],
            mode: rules.mode
        )
    }

    public static let defaults = RelayMilterConfig(
        milter: Milter(
            socket: .unix(path: "/run/relay-milter/relay-milter.sock"),
            socketMode: 0o660, socketGroup: nil, backlog: 128, timeoutSeconds: 30
        ),
        service: Service(user: nil, pidFile: nil, logLevel: .info, shutdownTimeoutSeconds: 10),
        metrics: Metrics(enabled: true, host: "127.0.0.1", port: 9469),
        stats: Stats(retentionHours: 30 * 24),
        publish: Publish(rbldnsdFile: nil, rbldnsdIPv6File: nil, intervalSeconds: 300, dnsTTLSeconds: 3600),
        dnsbl: DNSBL(
            zones: [], resolverHost: nil, resolverPort: 53, timeoutSeconds: 2, action: .reject,
            rejectText: "Your host {client} is listed by {zone}: {text}",
            tempfailText: "Your host {client} is listed by {zone}: {text}; try again later",
            tagHeader: "X-Relay-Milter-DNSBL"
        ),
        probe: Probe(
            enabled: true, port: 25, heloName: systemHostName(), testDomain: "",
            recipientLocalPart: "relaytest", senderLocalPart: "antispam", confirmWithData: true,
            pipelining: true, connectTimeoutSeconds: 10, commandTimeoutSeconds: 30, totalTimeoutSeconds: 120,
            excludeNetworks: Probe.defaultExclusions, allowLoopback: false, sourceAddress: nil,
            maxInFlight: 32, queueSize: 1000, networkIntervalSeconds: 60
        ),
        cache: Cache(
            path: "/var/lib/relay-milter/verdicts.sqlite", ttlSeconds: Cache.defaultTTLs, backend: .sqlite,
            postgresql: Cache.Shared(
                host: "127.0.0.1", port: 5432, user: "relay_milter", database: "relay_milter", tls: .prefer,
                passwordFile: nil, instance: systemHostName(), pollIntervalSeconds: 5, queryTimeoutSeconds: 30
            )
        ),
        enforcement: Enforcement(
            badVerdicts: Set(ProbeVerdict.allCases.filter(\.enforcedByDefault)), action: .reject, unknownAction: .accept,
            rejectText: "Your host {client} was found to be an open relay on {tested} ({evidence}); fix it, then mail postmaster",
            tempfailText: "Your host {client} has not been tested for open relaying yet; try again later",
            tagHeader: "X-Relay-Milter-Open-Relay"
        ),
        policy: PolicyConfig(
            trustedNetworks: [try! NetworkBlock(parsing: "127.0.0.0/8"), try! NetworkBlock(parsing: "::1/128")]
        ),
        // Every refusal reason spelled out, as check-config prints them.
        rules: ActionRules(actions: Dictionary(uniqueKeysWithValues: actionKeys.map { ($0.reason, PolicyAction.reject) })),
        replies: Replies(
            rejectText: "<{recipient}>: Relay access denied ({reason})",
            tempfailText: "<{recipient}>: Relay access temporarily refused ({reason})",
            tagHeader: "X-Relay-Milter"
        ),
        registered: Registered(
            enabled: false, domain: "", prefix: "relay-check", windowSeconds: 3600, networks: [], contact: "",
            maxPerHostPerDay: 3, maxPerHour: 20
        ),
        trap: Trap(
            enabled: false, daemonNames: ["relay-milter-trap"], localMail: .deliver,
            rejectText: "Your host {client} tried to relay mail through this site on {tested} ({evidence}); mail postmaster",
            retentionSeconds: 30 * 86400, maxRecords: 100_000
        )
    )

    /// The config names of the per-reason actions in `[actions]`.
    static let actionKeys: [(key: String, reason: ReasonCode)] = [
        ("relay_denied", .denied),
        ("routed_address", .routedAddress),
        ("invalid_address", .invalidAddress),
        ("mta_remote_transport", .mtaRemoteTransport),
        ("sender_not_local", .senderNotLocal),
    ]
}

/// This machine's host name, for EHLO and as the default fleet instance name.
public func systemHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "localhost" : name
}

extension RelayMilterConfig {
    /// What the open-relay tests' recipient domain falls back to with no
    /// domain of the admin's to use: a relay that checks recipient domains
    /// refuses it and looks closed (check-config warns).
    public static let fallbackTestDomain = "relay-test.invalid"

    /// The domain the open-relay tests send to: `[probe] test_domain`, or the
    /// first of `local_domains` (the admin's own: a test never goes past DATA's
    /// 354, so nothing arrives there), or `fallbackTestDomain`.
    public var probeTestDomain: String {
        if !probe.testDomain.isEmpty { return probe.testDomain }
        return policy.localDomains.first?.domain.text ?? Self.fallbackTestDomain
    }

    /// `[probe]` as the tests use it, its test domain decided.
    public var probeSettings: Probe {
        var settings = probe
        settings.testDomain = probeTestDomain
        return settings
    }
}

extension RelayMilterConfig {
    /// The registered tests' alias domain: `[registered] domain`, or the first local domain.
    public var registeredDomain: String? {
        registered.domain.isEmpty ? policy.localDomains.first?.domain.text : registered.domain
    }

    /// Whether the aliases' domain is one of the local domains, so that a
    /// test message comes back to this MTA.
    public var registeredDomainIsLocal: Bool {
        guard let domain = registeredDomain, let name = try? DomainName(parsing: domain) else { return false }
        return policy.localDomains.contains { $0.matches(name) }
    }

    /// The registered test message's sender: `[registered] contact`, or postmaster at the alias domain.
    public var registeredContact: String? {
        registered.contact.isEmpty ? registeredDomain.map { "postmaster@\($0)" } : registered.contact
    }
}
