/// Everything the relay rules look at for one recipient, as plain values.
public struct RelayTransaction: Sendable, Equatable {
    /// The connecting client's address; nil when the MTA did not say (unknown family).
    public var clientAddress: IPAddress?
    /// The SASL login (`{auth_authen}`), nil or empty when not authenticated.
    public var authenticatedUser: String?
    /// The envelope sender as given to MAIL FROM.
    public var sender: String
    /// The envelope recipient as given to RCPT TO.
    public var recipient: String
    /// How the MTA itself will route the recipient, when it told us.
    public var mtaRouting: MTARouting

    public init(
        clientAddress: IPAddress?,
        authenticatedUser: String? = nil,
        sender: String,
        recipient: String,
        mtaRouting: MTARouting = MTARouting()
    ) {
        self.clientAddress = clientAddress
        self.authenticatedUser = authenticatedUser
        self.sender = sender
        self.recipient = recipient
        self.mtaRouting = mtaRouting
    }
}

/// The MTA's own resolution of a recipient (`{rcpt_mailer}`, `{rcpt_host}`, `{rcpt_addr}`).
public struct MTARouting: Sendable, Equatable {
    public var transport: String?
    public var nextHop: String?
    public var address: String?

    public init(transport: String? = nil, nextHop: String? = nil, address: String? = nil) {
        self.transport = transport.flatMap { $0.isEmpty ? nil : $0 }
        self.nextHop = nextHop.flatMap { $0.isEmpty ? nil : $0 }
        self.address = address.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Postfix and Sendmail report a recipient they refused with the `error` mailer.
    public var isRejectedByMTA: Bool { transport == "error" }
}
