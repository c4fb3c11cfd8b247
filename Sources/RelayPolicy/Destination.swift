/// Where a recipient address goes, as far as relaying is concerned.
public enum Destination: Hashable, Sendable {
    /// Delivered on this host.
    case local
    /// A relay domain: we are its backup MX, so it counts as local.
    case relayDomain
    /// Another host: delivering it is relaying.
    case remote
    /// The MTA routes a local-looking address through a non-local transport.
    case remoteTransport(String)
    /// Routing syntax left in the local part; never local.
    case routed(Character)
    /// A source route (`@hop:user@domain`); never local, whatever the final domain.
    case sourceRouted
    /// Not a usable address.
    case invalid(String)

    public var isLocalDestination: Bool {
        switch self {
        case .local, .relayDomain: true
        default: false
        }
    }

    /// Classifies `address` against the configured domains and literals.
    /// Order matters: invalid before routed before the domain lookup, so that
    /// `a%b@local.example` and `@hop:a@local.example` are routed even though
    /// their domain is local.
    public static func classify(_ address: MailAddress, config: PolicyConfig) -> Destination {
        if address.isNull { return .invalid("null recipient") }
        if let routing = address.routingCharacter { return .routed(routing) }
        if address.hadSourceRoute { return .sourceRouted }
        switch address.domain {
        case nil:
            // RFC 5321 requires `postmaster` without a domain to reach this host;
            // any other unqualified name depends on the MTA's $myorigin, which may
            // not be local, so it is not trusted to be.
            return address.localPart.lowercased() == "postmaster" ? .local : .invalid("unqualified address")
        case .literal(let ip):
            return config.localIPLiterals.contains(ip) ? .local : .remote
        case .name(let name):
            if config.isLocal(name) { return .local }
            if config.isRelayDomain(name) { return .relayDomain }
            return .remote
        }
    }

    /// Parses and classifies raw text; a bad address is a classification, never an error.
    public static func classify(raw: String, config: PolicyConfig) -> Destination {
        do {
            return classify(try MailAddress(parsing: raw), config: config)
        } catch {
            return .invalid(error.description)
        }
    }
}
