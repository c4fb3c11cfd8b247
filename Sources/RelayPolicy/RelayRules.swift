/// The relay rules as a pure function: a transaction in, a decision out.
///
/// Relaying is allowed only when the client is trusted (network or SASL) or the
/// recipient is local as the MTA will route it. The sender address never
/// authorises anything: it is forged at will.
public func decide(_ transaction: RelayTransaction, config: PolicyConfig) -> Decision {
    // The MTA refused this recipient itself; it reaches us only to be counted.
    if transaction.mtaRouting.isRejectedByMTA {
        return Decision(.observe, .mtaRejected, "the MTA already rejected this recipient")
    }

    if let client = transaction.clientAddress, config.isTrusted(client) {
        return senderCheck(transaction, config: config)
            ?? Decision(.allow, .trustedNetwork, "client \(client) is in trusted networks")
    }
    if config.trustAuthenticated, let user = transaction.authenticatedUser, !user.isEmpty {
        return senderCheck(transaction, config: config)
            ?? Decision(.allow, .authenticated, "client authenticated as \(user)")
    }

    switch recipientDestination(transaction, config: config) {
    case .local:
        return Decision(.allow, .localRecipient, "recipient is in a local domain")
    case .relayDomain:
        return Decision(.allow, .relayDomain, "recipient is in a relay domain")
    case .remote:
        return Decision(.deny, .denied, "recipient is not local and the client is neither trusted nor authenticated")
    case .remoteTransport(let transport):
        return Decision(.deny, .mtaRemoteTransport, "the MTA routes this recipient through non-local transport \"\(transport)\"")
    case .routed(let character):
        return Decision(.deny, .routedAddress, "local part contains routing character \"\(character)\"")
    case .sourceRouted:
        return Decision(.deny, .routedAddress, "address has a source route")
    case .invalid(let why):
        return Decision(.deny, .invalidAddress, "invalid recipient address: \(why)")
    }
}

/// Our classification of the envelope recipient, checked against the MTA's
/// own resolution where it sent one. The stricter answer wins, except that
/// who a message is for is the recipient the client named: a forward the
/// admin's own alias table makes to a plain address elsewhere is not a relay.
func recipientDestination(_ transaction: RelayTransaction, config: PolicyConfig) -> Destination {
    let ours = Destination.classify(raw: transaction.recipient, config: config)
    guard ours.isLocalDestination else { return ours }
    let routing = transaction.mtaRouting

    // The address the MTA will actually deliver to, where it rewrote it.
    if let rewritten = transaction.mtaRewrittenAddress {
        let theirs = Destination.classify(raw: rewritten, config: config)
        if !theirs.isLocalDestination && !isLocalMailerUser(rewritten, transport: routing.transport, config: config) {
            // Before aliasing (Postfix), a rewrite elsewhere means the MTA read
            // the address otherwise than we did. After it (Sendmail's
            // virtusertable), a plain remote address is where the admin forwards
            // a local recipient, through whatever transport reaches it; routing
            // syntax left in it still counts against it.
            guard routing.resolvedAfterAliases, theirs == .remote else { return theirs }
            return ours
        }
    }
    // A local domain must also be delivered by a local transport; relay
    // domains leave through whatever transport reaches their primary MX. The
    // error mailer of an accepted recipient delivers nowhere (see MTARouting).
    if ours == .local, let transport = routing.transport, transport != MTARouting.errorMailer,
       !config.localTransports.contains(transport) {
        return .remoteTransport(transport)
    }
    return ours
}

/// Sendmail gives its local mailer's `{rcpt_addr}` as the bare user name
/// (`bob`, not `bob@example.org`): no domain is left to check, and the local
/// mailer is itself Sendmail's word that it delivers on this host. Routing
/// syntax left in the user name still counts against it.
private func isLocalMailerUser(_ rewritten: String, transport: String?, config: PolicyConfig) -> Bool {
    guard let transport, config.localTransports.contains(transport),
          let address = try? MailAddress(parsing: rewritten) else { return false }
    return address.domain == nil && !address.isNull && address.routingCharacter == nil && !address.hadSourceRoute
}

/// With `sender_must_be_local`, trusted and authenticated clients may only use
/// a sender in a local domain (or the null sender, for bounces).
private func senderCheck(_ transaction: RelayTransaction, config: PolicyConfig) -> Decision? {
    guard config.senderMustBeLocal else { return nil }
    guard let sender = try? MailAddress(parsing: transaction.sender) else {
        return Decision(.deny, .senderNotLocal, "sender address is invalid")
    }
    if sender.isNull { return nil }
    if !sender.isRouted, case .name(let domain)? = sender.domain, config.isLocal(domain) {
        return nil
    }
    return Decision(.deny, .senderNotLocal, "sender is not in a local domain")
}
