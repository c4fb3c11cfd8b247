/// What the open-relay test cache says about the connecting host.
public enum HostStanding: Sendable, Equatable {
    /// Tested, with a verdict configured as bad (an open relay).
    case listed(verdict: String)
    /// Tested, and the verdict is not a bad one.
    case clean(verdict: String)
    /// Not tested yet, or the result expired; a test is queued when allowed.
    case untested
    /// Never tested: excluded network, or testing is off.
    case notTested
    /// The MTA did not give the client's address: nothing to look up or test.
    case unidentified
}

/// A DNS blocklist that lists the connecting host (a cached answer).
public struct DNSBLListing: Sendable, Equatable {
    public var zone: String
    /// The list's TXT text, or a stand-in naming its answer.
    public var text: String

    public init(zone: String, text: String) {
        self.zone = zone
        self.text = text
    }
}

/// Everything the host rules look at, at MAIL FROM (when authentication is known).
public struct HostCheck: Sendable, Equatable {
    public var clientAddress: IPAddress?
    public var authenticatedUser: String?
    public var standing: HostStanding
    /// Untested hosts, and clients whose address the MTA did not give, are
    /// refused or tagged (greylisting-style) rather than accepted.
    public var holdUntested: Bool
    /// The first configured DNS blocklist that lists the host, if any.
    public var dnsblListing: DNSBLListing?

    public init(clientAddress: IPAddress?, authenticatedUser: String? = nil, standing: HostStanding, holdUntested: Bool = false,
                dnsblListing: DNSBLListing? = nil) {
        self.clientAddress = clientAddress
        self.authenticatedUser = authenticatedUser
        self.standing = standing
        self.holdUntested = holdUntested
        self.dnsblListing = dnsblListing
    }
}

/// The host rules as a pure function: trusted and authenticated clients are
/// exempt; a host found to be an open relay is denied, then one a DNS
/// blocklist lists (our own test is the more specific verdict); an untested
/// or unidentified one is denied only when configured to hold untested hosts.
public func decideHost(_ check: HostCheck, config: PolicyConfig) -> Decision {
    if let client = check.clientAddress, config.isTrusted(client) {
        return Decision(.allow, .trustedNetwork, "client \(client) is in trusted networks")
    }
    if config.trustAuthenticated, let user = check.authenticatedUser, !user.isEmpty {
        return Decision(.allow, .authenticated, "client authenticated as \(user)")
    }
    switch (check.standing, check.dnsblListing) {
    case (.listed(let verdict), _):
        return Decision(.deny, .openRelayHost, "client was found to be an open relay (verdict \(verdict))")
    case (_, let listing?):
        return Decision(.deny, .dnsblListed, "client is listed in \(listing.zone)")
    case (.untested, nil) where check.holdUntested:
        return Decision(.deny, .untestedHost, "client has not been tested for open relaying yet")
    case (.unidentified, nil) where check.holdUntested:
        return Decision(.deny, .unidentifiedHost, "the MTA did not give the client's address, so it cannot be tested")
    case (.clean(let verdict), nil):
        return Decision(.allow, .hostNotListed, "client was tested: \(verdict)")
    case (.untested, nil), (.notTested, nil), (.unidentified, nil):
        return Decision(.allow, .hostNotListed, "client is not listed")
    }
}
