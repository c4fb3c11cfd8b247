/// The relay rules' inputs from configuration, already validated.
public struct PolicyConfig: Sendable, Equatable {
    /// Domains delivered on this host.
    public var localDomains: [DomainPattern]
    /// Domains we accept for and pass on (backup MX); they count as local destinations.
    public var relayDomains: [DomainPattern]
    /// Clients in these networks may relay anywhere.
    public var trustedNetworks: [NetworkBlock]
    /// SASL-authenticated clients (`{auth_authen}` set) may relay anywhere.
    public var trustAuthenticated: Bool
    /// Address literals (`user@[192.0.2.1]`) that mean this host.
    public var localIPLiterals: [IPAddress]
    /// Trusted and authenticated clients must also use a local sender domain.
    public var senderMustBeLocal: Bool
    /// `{rcpt_mailer}` values that mean delivery on this host.
    public var localTransports: Set<String>

    /// Transports that deliver on this host in Postfix (`local`, `virtual`, `lmtp`)
    /// and in Sendmail (`local`, `prog`, the `*file*`/`*include*` pseudo-mailers,
    /// and the local-delivery mailers of its MAILER() definitions: `procmail`,
    /// `cyrus`, `cyrusbb`, `cyrusv2`).
    public static let defaultLocalTransports: Set<String> = [
        "local", "virtual", "lmtp", "prog", "*file*", "*include*", "procmail", "cyrus", "cyrusbb", "cyrusv2",
    ]

    public init(
        localDomains: [DomainPattern] = [],
        relayDomains: [DomainPattern] = [],
        trustedNetworks: [NetworkBlock] = [],
        trustAuthenticated: Bool = true,
        localIPLiterals: [IPAddress] = [],
        senderMustBeLocal: Bool = false,
        localTransports: Set<String> = PolicyConfig.defaultLocalTransports
    ) {
        self.localDomains = localDomains
        self.relayDomains = relayDomains
        self.trustedNetworks = trustedNetworks
        self.trustAuthenticated = trustAuthenticated
        self.localIPLiterals = localIPLiterals
        self.senderMustBeLocal = senderMustBeLocal
        self.localTransports = localTransports
    }

    public func isTrusted(_ address: IPAddress) -> Bool {
        trustedNetworks.contains { $0.contains(address) }
    }

    func isLocal(_ domain: DomainName) -> Bool {
        localDomains.contains { $0.matches(domain) }
    }

    func isRelayDomain(_ domain: DomainName) -> Bool {
        relayDomains.contains { $0.matches(domain) }
    }
}
