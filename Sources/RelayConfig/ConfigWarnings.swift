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

extension RelayMilterConfig {
    public var warnings: [ConfigWarning] {
        var warnings: [ConfigWarning] = []
        if !milter.socket.isLoopbackOnly {
            // Only reachable with allow_remote_mta = true (ConfigLoader.socketExposure).
            warnings.append(ConfigWarning(
                key: "milter.socket",
                message: "\"\(milter.socket)\" listens beyond loopback (allow_remote_mta = true): the milter protocol has "
                    + "no authentication, so anyone who reaches the port can pose as the MTA and have relay-milter test "
                    + "any host from this one; let only the MTA reach it (a firewall rule)"))
        }
        if service.runAsRoot, service.user == nil {
            warnings.append(ConfigWarning(
                key: "service.run_as_root",
                message: "started as root, relay-milter stays root: what the MTA and tested hosts send is then handled "
                    + "by root; name a user to run as instead"))
        }
        for block in policy.trustedNetworks where block.prefixLength == 0 {
            warnings.append(ConfigWarning(
                key: "policy.trusted_networks",
                message: "\"\(block)\" trusts every client: any host on the Internet may relay through this MTA as far "
                    + "as relay-milter is concerned, which then refuses nothing"))
        }
        for domain in policy.localDomains where policy.relayDomains.contains(domain) {
            warnings.append(ConfigWarning(
                key: "policy.relay_domains",
                message: "do not list \"\(domain)\" in both local_domains and relay_domains: mail for it is local"))
        }
        let shared = cache.postgresql
        if cache.backend == .postgresql, !shared.hostIsLoopback, shared.tls != .require {
            warnings.append(ConfigWarning(
                key: "cache.postgresql.tls",
                message: "\"\(shared.tls.rawValue)\" to \(shared.host): anyone on the path can read and rewrite the fleet's "
                    + "verdicts (with prefer, by refusing TLS); use tls = \"require\", which verifies the server's certificate"))
        }
        if policy.localDomains.contains(where: { $0.domain.text == sampleLocalDomain }) {
            warnings.append(ConfigWarning(
                key: "policy.local_domains",
                message: "still holds the shipped config's placeholder \"\(sampleLocalDomain)\": list the domains this MTA receives mail for"))
        }
        return warnings
    }
}
