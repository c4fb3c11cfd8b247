import RelayPolicy
import Testing

struct DecisionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let transaction: RelayTransaction
        let verdict: Decision.Verdict
        let reason: ReasonCode
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "local recipient", transaction: Site.transaction(to: "<user@example.org>"), verdict: .allow, reason: .localRecipient),
        Case(name: "subdomain of a .domain entry", transaction: Site.transaction(to: "<user@mx.example.org>"), verdict: .allow, reason: .localRecipient),
        Case(name: "mixed case, trailing dot, no brackets", transaction: Site.transaction(to: "User@EXAMPLE.Org."), verdict: .allow, reason: .localRecipient),
        Case(name: "relay domain (backup MX)", transaction: Site.transaction(to: "<user@backup.example>"), verdict: .allow, reason: .relayDomain),
        Case(name: "relay domain keeps its non-local transport", transaction: Site.transaction(to: "<user@backup.example>", transport: "relay"), verdict: .allow, reason: .relayDomain),
        Case(name: "subdomain of a relay domain is not listed", transaction: Site.transaction(to: "<user@x.backup.example>"), verdict: .deny, reason: .denied),
        Case(name: "our IP literal", transaction: Site.transaction(to: "<user@[198.51.100.25]>"), verdict: .allow, reason: .localRecipient),
        Case(name: "another host's IP literal", transaction: Site.transaction(to: "<user@[198.51.100.26]>"), verdict: .deny, reason: .denied),
        Case(name: "IPv6 literal not listed", transaction: Site.transaction(to: "<user@[IPv6:2001:db8::1]>"), verdict: .deny, reason: .denied),
        Case(name: "bare IP without brackets", transaction: Site.transaction(to: "<user@198.51.100.25>"), verdict: .deny, reason: .invalidAddress),
        Case(name: "empty domain", transaction: Site.transaction(to: "<user@>"), verdict: .deny, reason: .invalidAddress),
        Case(name: "null recipient", transaction: Site.transaction(to: "<>"), verdict: .deny, reason: .invalidAddress),
        Case(name: "unqualified user", transaction: Site.transaction(to: "<user>"), verdict: .deny, reason: .invalidAddress),
        Case(name: "unqualified postmaster", transaction: Site.transaction(to: "<Postmaster>"), verdict: .allow, reason: .localRecipient),
        Case(name: "suffix confusion", transaction: Site.transaction(to: "<user@evilexample.org>"), verdict: .deny, reason: .denied),
        Case(name: "local domain as a prefix", transaction: Site.transaction(to: "<user@example.org.evil.example>"), verdict: .deny, reason: .denied),
        Case(name: "forged local sender", transaction: Site.transaction(from: "<ceo@example.org>", to: "<victim@elsewhere.example>"), verdict: .deny, reason: .denied),
        Case(name: "IDN U-label matches A-label config", transaction: Site.transaction(to: "<leser@xn--bcher-kva.example>"), verdict: .allow, reason: .localRecipient),
        Case(name: "IDN U-label matches U-label config", transaction: Site.transaction(to: "<leser@BÜCHER.example>"), verdict: .allow, reason: .localRecipient),
        Case(name: "MTA delivers locally", transaction: Site.transaction(to: "<user@example.org>", transport: "local", nextHop: "mx.example.org"), verdict: .allow, reason: .localRecipient),
        Case(name: "MTA routes a local domain via smtp", transaction: Site.transaction(to: "<user@example.org>", transport: "smtp", nextHop: "elsewhere.example"), verdict: .deny, reason: .mtaRemoteTransport),
        Case(name: "MTA delivers the address as given", transaction: Site.transaction(to: "<user@example.org>", transport: "local", rewritten: "user@example.org"), verdict: .allow, reason: .localRecipient),
        Case(name: "MTA sends the address as given out via smtp", transaction: Site.transaction(to: "<user@example.org>", transport: "smtp", rewritten: "user@example.org"), verdict: .deny, reason: .mtaRemoteTransport),
        Case(name: "MTA rewrote to a look-alike of the local domain", transaction: Site.transaction(to: "<user@example.org>", transport: "local", rewritten: "user@example.org.evil.example"), verdict: .deny, reason: .denied),
        Case(name: "MTA rewrote to a remote address", transaction: Site.transaction(to: "<user@example.org>", transport: "local", rewritten: "user@elsewhere.example"), verdict: .deny, reason: .denied),
        Case(name: "Sendmail's local mailer names the bare user", transaction: Site.transaction(to: "<bob@example.org>", transport: "local", rewritten: "bob"), verdict: .allow, reason: .localRecipient),
        Case(name: "Sendmail's prog mailer from an alias", transaction: Site.transaction(to: "<list@example.org>", transport: "prog", rewritten: "/usr/bin/list-handler"), verdict: .allow, reason: .localRecipient),
        Case(name: "a bare user through a remote mailer", transaction: Site.transaction(to: "<bob@example.org>", transport: "esmtp", rewritten: "bob"), verdict: .deny, reason: .invalidAddress),
        Case(name: "a bare user with a bang path through the local mailer", transaction: Site.transaction(to: "<bob@example.org>", transport: "local", rewritten: "evil.example!bob"), verdict: .deny, reason: .routedAddress),
        Case(name: "a bare user with a percent hack through the local mailer", transaction: Site.transaction(to: "<bob@example.org>", transport: "local", rewritten: "bob%evil.example"), verdict: .deny, reason: .routedAddress),
        Case(name: "a bare user never makes a remote recipient local", transaction: Site.transaction(to: "<bob@elsewhere.example>", transport: "local", rewritten: "bob"), verdict: .deny, reason: .denied),
        // A refused recipient as Postfix's smtpd_milter.c and Sendmail report it
        // (SMFIP_RCPT_REJ): the error mailer, the status alone, the reply text.
        Case(name: "MTA already rejected it", transaction: Site.transaction(to: "<x@elsewhere.example>", transport: "error", nextHop: "5.7.1", rewritten: "Relay access denied"), verdict: .observe, reason: .mtaRejected),
        Case(name: "MTA already rejected a local one", transaction: Site.transaction(to: "<nobody@example.org>", transport: "error", nextHop: "5.1.1", rewritten: "Recipient address rejected: User unknown"), verdict: .observe, reason: .mtaRejected),
        Case(name: "MTA tempfailed it", transaction: Site.transaction(to: "<x@elsewhere.example>", transport: "error", nextHop: "4.7.1", rewritten: "Service unavailable"), verdict: .observe, reason: .mtaRejected),
        // Postfix resolves every address in a virtual alias domain to the error
        // transport, accepted or not: an accepted one is decided like any other.
        Case(name: "Postfix virtual alias domain, foreign", transaction: Site.transaction(to: "<victim@evil.example>", transport: "error", nextHop: "5.1.1 User unknown in virtual alias table", rewritten: "victim@evil.example"), verdict: .deny, reason: .denied),
        Case(name: "Postfix virtual alias domain, ours", transaction: Site.transaction(to: "<info@example.org>", transport: "error", nextHop: "5.1.1 User unknown in virtual alias table", rewritten: "info@example.org"), verdict: .allow, reason: .localRecipient),
        Case(name: "the error mailer without a host", transaction: Site.transaction(to: "<victim@evil.example>", transport: "error"), verdict: .deny, reason: .denied),
        Case(name: "the error mailer with a status and text as host", transaction: Site.transaction(to: "<victim@evil.example>", transport: "error", nextHop: "5.7.1 Relay access denied"), verdict: .deny, reason: .denied),
        Case(name: "the error mailer with a success status", transaction: Site.transaction(to: "<victim@evil.example>", transport: "error", nextHop: "2.0.0"), verdict: .deny, reason: .denied),
        Case(name: "the error mailer with a look-alike status", transaction: Site.transaction(to: "<victim@evil.example>", transport: "error", nextHop: "5.7.1.0"), verdict: .deny, reason: .denied),
        // Sendmail hands milters the recipient after its virtusertable: a local
        // recipient forwarded elsewhere is the admin's forward, not a relay.
        Case(name: "Sendmail virtusertable forward", transaction: Site.transaction(to: "<info@example.org>", transport: "esmtp", nextHop: "remote.example", rewritten: "someone@remote.example", afterAliases: true), verdict: .allow, reason: .localRecipient),
        Case(name: "Sendmail forward keeps a remote recipient remote", transaction: Site.transaction(to: "<x@elsewhere.example>", transport: "esmtp", nextHop: "remote.example", rewritten: "someone@remote.example", afterAliases: true), verdict: .deny, reason: .denied),
        Case(name: "Sendmail forward to a routed address", transaction: Site.transaction(to: "<info@example.org>", transport: "esmtp", rewritten: "someone%evil.example@remote.example", afterAliases: true), verdict: .deny, reason: .routedAddress),
        Case(name: "Sendmail sends the address as given out via esmtp", transaction: Site.transaction(to: "<user@example.org>", transport: "esmtp", rewritten: "user@example.org", afterAliases: true), verdict: .deny, reason: .mtaRemoteTransport),
        Case(name: "Postfix never forwards before queueing: a rewrite elsewhere counts", transaction: Site.transaction(to: "<info@example.org>", transport: "smtp", rewritten: "someone@remote.example"), verdict: .deny, reason: .denied),
        Case(name: "no client address is untrusted", transaction: Site.transaction(client: nil, to: "<x@elsewhere.example>"), verdict: .deny, reason: .denied),
        Case(name: "IPv6 trusted client", transaction: Site.transaction(client: IPAddress("2001:db8:1:2::5"), to: "<x@elsewhere.example>"), verdict: .allow, reason: .trustedNetwork),
        Case(name: "IPv4-mapped trusted client", transaction: Site.transaction(client: IPAddress("::ffff:192.0.2.5"), to: "<x@elsewhere.example>"), verdict: .allow, reason: .trustedNetwork),
        Case(name: "empty auth user is not authenticated", transaction: Site.transaction(auth: "", to: "<x@elsewhere.example>"), verdict: .deny, reason: .denied),
        Case(name: "unquoted space", transaction: Site.transaction(to: "<us er@example.org>"), verdict: .deny, reason: .invalidAddress),
        Case(name: "unbalanced quote", transaction: Site.transaction(to: "<\"user@example.org>"), verdict: .deny, reason: .invalidAddress),
    ]

    @Test(arguments: cases)
    func decides(_ testCase: Case) {
        let decision = decide(testCase.transaction, config: Site.config)
        #expect(decision.verdict == testCase.verdict, "\(decision.explanation)")
        #expect(decision.reason == testCase.reason, "\(decision.explanation)")
    }

    @Test func authenticatedIsIgnoredWhenNotTrusted() {
        var config = Site.config
        config.trustAuthenticated = false
        let decision = decide(Site.transaction(auth: "alice", to: "<x@elsewhere.example>"), config: config)
        #expect(decision.reason == .denied)
    }

    @Test func senderMustBeLocalForTrustedClients() {
        var config = Site.config
        config.senderMustBeLocal = true
        let spoof = decide(Site.transaction(client: Site.trustedClient, from: "<ceo@bank.example>", to: "<x@elsewhere.example>"), config: config)
        #expect(spoof.verdict == .deny)
        #expect(spoof.reason == .senderNotLocal)
        let own = decide(Site.transaction(auth: "alice", from: "<alice@example.org>", to: "<x@elsewhere.example>"), config: config)
        #expect(own.reason == .authenticated)
        let bounce = decide(Site.transaction(client: Site.trustedClient, from: "<>", to: "<x@elsewhere.example>"), config: config)
        #expect(bounce.reason == .trustedNetwork)
        let routed = decide(Site.transaction(auth: "alice", from: "<x%bank.example@example.org>", to: "<x@elsewhere.example>"), config: config)
        #expect(routed.reason == .senderNotLocal)
    }
}

struct ActionTests {
    static let deny = Decision(.deny, .denied, "")
    static let allow = Decision(.allow, .localRecipient, "")

    @Test(arguments: [
        (PolicyMode.enforce, PolicyAction.reject, PolicyAction.reject),
        (.enforce, .tempfail, .tempfail),
        (.enforce, .tag, .tag),
        (.tagOnly, .reject, .tag),
        (.tagOnly, .tempfail, .tag),
        (.logOnly, .reject, .accept),
        (.logOnly, .tag, .accept),
    ])
    func modeTransformsDenials(mode: PolicyMode, configured: PolicyAction, applied: PolicyAction) {
        let rules = ActionRules(actions: [.denied: configured], mode: mode)
        #expect(rules.resolve(Self.deny) == ResolvedAction(configured: configured, mode: mode))
        #expect(rules.resolve(Self.deny).applied == applied)
    }

    @Test func allowedRecipientsAreAccepted() {
        for mode in PolicyMode.allCases {
            #expect(ActionRules(mode: mode).resolve(Self.allow).applied == .accept)
        }
    }

    @Test func unlistedReasonsReject() {
        #expect(ActionRules().resolve(Decision(.deny, .routedAddress, "")).applied == .reject)
    }
}

struct HostRulesTests {
    static let listing = DNSBLListing(zone: "bl.example.test", text: "open relay")

    @Test(arguments: [
        (HostCheck(clientAddress: Site.untrustedClient, standing: .listed(verdict: "open")), Decision.Verdict.deny, ReasonCode.openRelayHost),
        (HostCheck(clientAddress: Site.trustedClient, standing: .listed(verdict: "open")), .allow, .trustedNetwork),
        (HostCheck(clientAddress: Site.untrustedClient, authenticatedUser: "alice", standing: .listed(verdict: "open")), .allow, .authenticated),
        (HostCheck(clientAddress: Site.untrustedClient, standing: .clean(verdict: "closed")), .allow, .hostNotListed),
        (HostCheck(clientAddress: Site.untrustedClient, standing: .untested), .allow, .hostNotListed),
        (HostCheck(clientAddress: Site.untrustedClient, standing: .untested, holdUntested: true), .deny, .untestedHost),
        (HostCheck(clientAddress: nil, standing: .notTested, holdUntested: true), .allow, .hostNotListed),
        // A client whose address the MTA did not give is held like an untested one.
        (HostCheck(clientAddress: nil, standing: .unidentified), .allow, .hostNotListed),
        (HostCheck(clientAddress: nil, standing: .unidentified, holdUntested: true), .deny, .unidentifiedHost),
        (HostCheck(clientAddress: nil, authenticatedUser: "alice", standing: .unidentified, holdUntested: true), .allow, .authenticated),
        // A DNSBL listing denies, after our own test's verdict and before holding untested hosts;
        // trusted and authenticated clients stay exempt.
        (HostCheck(clientAddress: Site.untrustedClient, standing: .clean(verdict: "closed"), dnsblListing: Self.listing), .deny, .dnsblListed),
        (HostCheck(clientAddress: Site.untrustedClient, standing: .untested, holdUntested: true, dnsblListing: Self.listing), .deny, .dnsblListed),
        (HostCheck(clientAddress: Site.untrustedClient, standing: .listed(verdict: "open"), dnsblListing: Self.listing), .deny, .openRelayHost),
        (HostCheck(clientAddress: Site.trustedClient, standing: .untested, dnsblListing: Self.listing), .allow, .trustedNetwork),
        (HostCheck(clientAddress: Site.untrustedClient, authenticatedUser: "alice", standing: .untested, dnsblListing: Self.listing), .allow, .authenticated),
    ])
    func decides(check: HostCheck, verdict: Decision.Verdict, reason: ReasonCode) {
        let decision = decideHost(check, config: Site.config)
        #expect(decision.verdict == verdict)
        #expect(decision.reason == reason)
    }
}
