/// The fixed set of reasons a decision can give. The raw values are stable:
/// logs, `decide --json` and metrics labels use them.
public enum ReasonCode: String, CaseIterable, Sendable, Codable {
    case trustedNetwork = "relay.trusted_network"
    case authenticated = "relay.authenticated"
    case localRecipient = "relay.local_recipient"
    case relayDomain = "relay.relay_domain"
    case denied = "relay.denied"
    case routedAddress = "relay.routed_address"
    case invalidAddress = "relay.invalid_address"
    case mtaRemoteTransport = "relay.mta_remote_transport"
    case mtaRejected = "relay.mta_rejected"
    case senderNotLocal = "sender.not_local"
    case openRelayHost = "host.open_relay"
    case untestedHost = "host.untested"
    case unidentifiedHost = "host.unidentified"
    case dnsblListed = "host.dnsbl_listed"
    case hostNotListed = "host.not_listed"

    /// Whether this reason only records what the MTA did, without a decision
    /// of relay-milter's (`stats` shows these apart from its decisions).
    public var isObservation: Bool {
        switch self {
        case .mtaRejected: true
        case .trustedNetwork, .authenticated, .localRecipient, .relayDomain, .denied, .routedAddress, .invalidAddress,
             .mtaRemoteTransport, .senderNotLocal, .openRelayHost, .untestedHost, .unidentifiedHost, .dnsblListed,
             .hostNotListed: false
        }
    }
}

/// What the relay rules say about one recipient.
public struct Decision: Hashable, Sendable {
    public enum Verdict: String, Hashable, Sendable {
        /// The recipient may be accepted.
        case allow
        /// Accepting it would relay (or spoof): the configured action applies.
        case deny
        /// The MTA already refused it; we only count it.
        case observe
    }

    public let verdict: Verdict
    public let reason: ReasonCode
    /// One human sentence, for logs and `decide`.
    public let explanation: String

    public init(_ verdict: Verdict, _ reason: ReasonCode, _ explanation: String) {
        self.verdict = verdict
        self.reason = reason
        self.explanation = explanation
    }
}
