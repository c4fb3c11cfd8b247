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

    /// The MTA's `{rcpt_addr}` where it is not the recipient as given
    /// (`bob@example.org` for `<bob@example.org>`, or for `bob@example.org`
    /// as Postfix's cleanup gives non-SMTP recipients, is the same): what the
    /// MTA made of it. A recipient as given classifies the same as itself.
    public var mtaRewrittenAddress: String? {
        guard let rewritten = mtaRouting.address else { return nil }
        var given = Substring(recipient).utf8
        if given.count >= 2, given.first == UInt8(ascii: "<"), given.last == UInt8(ascii: ">") {
            given = given.dropFirst().dropLast()
        }
        return given.elementsEqual(rewritten.utf8) ? nil : rewritten
    }
}

/// The MTA's own resolution of a recipient (`{rcpt_mailer}`, `{rcpt_host}`, `{rcpt_addr}`).
public struct MTARouting: Sendable, Equatable {
    public var transport: String?
    public var nextHop: String?
    public var address: String?
    /// Whether `transport` and `address` are those after the MTA's alias
    /// tables: Sendmail applies its virtusertable before a milter sees the
    /// recipient, so a local recipient forwarded elsewhere arrives as the
    /// forward's target; Postfix expands aliases only after queueing.
    public var resolvedAfterAliases: Bool

    public init(transport: String? = nil, nextHop: String? = nil, address: String? = nil, resolvedAfterAliases: Bool = false) {
        self.transport = transport.flatMap { $0.isEmpty ? nil : $0 }
        self.nextHop = nextHop.flatMap { $0.isEmpty ? nil : $0 }
        self.address = address.flatMap { $0.isEmpty ? nil : $0 }
        self.resolvedAfterAliases = resolvedAfterAliases
    }

    /// The mailer both MTAs name for a recipient they will not deliver. For a
    /// recipient they accepted it is not a delivery elsewhere: Postfix
    /// resolves every address in a virtual alias domain to it (the alias
    /// rewrite comes after queueing) and bounces through it what a table
    /// sends there.
    public static let errorMailer = "error"

    /// A recipient the MTA refused itself, which it reports to milters that
    /// ask for them (`SMFIP_RCPT_REJ`): the `error` mailer with the refusal's
    /// enhanced status code alone as the host (`5.7.1`), the reply text as the
    /// address. An accepted recipient with the `error` mailer has a host with
    /// more in it (Postfix's `5.1.1 User unknown in virtual alias table`) and
    /// is decided like any other.
    public var isRejectedByMTA: Bool {
        guard transport == Self.errorMailer, let nextHop else { return false }
        return Self.isEnhancedStatusCode(nextHop)
    }

    /// `4.7.1`, `5.1.1`, `5.7.1`: a refusal's class (4 or 5), subject and
    /// detail (RFC 3463).
    static func isEnhancedStatusCode(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "4" || parts[0] == "5" else { return false }
        return parts.dropFirst().allSatisfy { part in
            (1...3).contains(part.utf8.count) && part.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        }
    }
}
