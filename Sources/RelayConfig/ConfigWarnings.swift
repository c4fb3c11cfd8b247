import RelayPolicy

/// What a config that loads may still get wrong, in the way Postfix warns
/// ("do not list domain … in BOTH mydestination and relay_domains"): each is
/// legal, and each is almost always a mistake or a risk to know about.
/// `check-config` prints them (and fails on them with `--strict`); the daemon
/// logs them at start and at each reload.
public struct ConfigWarning: Sendable, Equatable, CustomStringConvertible {
    /// The key concerned, as `check-config` prints it (`policy.local_domains`).
    public let key: String
    public let message: String

    public var description: String { "\(key): \(message)" }
}

/// The placeholder for the admin's own domains in the shipped config.
let sampleLocalDomain = "example.test"

/// One warning's test, attached to the key it names: a row of
/// `ConfigSchema.keys` (ConfigSchemaTests holds every check to one).
public struct ConfigCheck: Sendable {
    public let key: String
    /// What is wrong in a config, one message each; none when all is well.
    let findings: @Sendable (RelayMilterConfig) -> [String]
}

extension ConfigSchema {
    /// The checks, in the order `check-config` prints what they find.
    public static let checks: [ConfigCheck] = [
        ConfigCheck(key: "milter.socket") { config in
            // Only reachable with allow_remote_mta = true (ConfigLoader.socketExposure).
            config.milter.socket.isLoopbackOnly ? [] : [
                "\"\(config.milter.socket)\" listens beyond loopback (allow_remote_mta = true): the milter protocol has "
                    + "no authentication, so anyone who reaches the port can pose as the MTA and have relay-milter test "
                    + "any host from this one; let only the MTA reach it (a firewall rule)",
            ]
        },
        ConfigCheck(key: "service.run_as_root") { config in
            config.service.runAsRoot && config.service.user == nil ? [
                "started as root, relay-milter stays root: what the MTA and tested hosts send is then handled "
                    + "by root; name a user to run as instead",
            ] : []
        },
        ConfigCheck(key: "policy.trusted_networks") { config in
            config.policy.trustedNetworks.filter { $0.prefixLength == 0 }.map { block in
                "\"\(block)\" trusts every client: any host on the Internet may relay through this MTA as far "
                    + "as relay-milter is concerned, which then refuses nothing"
            }
        },
        ConfigCheck(key: "policy.relay_domains") { config in
            config.policy.localDomains.filter { config.policy.relayDomains.contains($0) }.map { domain in
                "do not list \"\(domain)\" in both local_domains and relay_domains: mail for it is local"
            }
        },
        ConfigCheck(key: "cache.postgresql.tls") { config in
            let shared = config.cache.postgresql
            return config.cache.backend == .postgresql && !shared.hostIsLoopback && shared.tls != .require ? [
                "\"\(shared.tls.rawValue)\" to \(shared.host): anyone on the path can read and rewrite the fleet's "
                    + "verdicts (with prefer, by refusing TLS); use tls = \"require\", which verifies the server's certificate",
            ] : []
        },
        ConfigCheck(key: "probe.test_domain") { config in
            let domain = config.probeTestDomain
            return config.probe.enabled && (domain == "invalid" || domain.hasSuffix(".invalid")) ? [
                "the open-relay tests send to \"\(domain)\", which a relay that checks recipient domains refuses, so it "
                    + "looks closed; name a domain of yours (or list local_domains): a test never sends a message",
            ] : []
        },
        ConfigCheck(key: "registered.domain") { config in
            guard config.registered.enabled else { return [] }
            guard config.registeredDomainIsLocal else {
                return ["registered tests need their aliases in one of local_domains, so that the message comes back here; "
                    + "probe --registered refuses to run until it is"]
            }
            return []
        },
        ConfigCheck(key: "policy.local_domains") { config in
            config.policy.localDomains.contains(where: { $0.domain.text == sampleLocalDomain }) ? [
                "still holds the shipped config's placeholder \"\(sampleLocalDomain)\": list the domains this MTA receives mail for",
            ] : []
        },
    ]
}

extension RelayMilterConfig {
    public var warnings: [ConfigWarning] {
        ConfigSchema.checks.flatMap { check in
            check.findings(self).map { ConfigWarning(key: check.key, message: $0) }
        }
    }
}
