import RelayPolicy
import Testing

/// The routing variants of the public relay testers (nmap's smtp-open-relay
/// and the MAPS-style extras), with the server's name and IP literal filled in
/// as a tester would. Every one must be refused from an untrusted client.
struct RelayTesterVariantTests {
    struct Variant: CustomTestStringConvertible, Sendable {
        let name: String
        let from: String
        let to: String
        let reason: ReasonCode
        var testDescription: String { name }
    }

    static let ip = "[\(Site.serverIP)]"
    static let host = Site.serverName
    static let variants: [Variant] = [
        Variant(name: "null sender", from: "<>", to: "<relaytest@nmap.scanme.org>", reason: .denied),
        Variant(name: "sender = recipient domain", from: "<antispam@nmap.scanme.org>", to: "<relaytest@nmap.scanme.org>", reason: .denied),
        Variant(name: "local-claiming sender", from: "<antispam@\(host)>", to: "<relaytest@nmap.scanme.org>", reason: .denied),
        Variant(name: "IP-literal sender", from: "<antispam@\(ip)>", to: "<relaytest@nmap.scanme.org>", reason: .denied),
        Variant(name: "percent hack via IP literal", from: "<antispam@\(ip)>", to: "<relaytest%nmap.scanme.org@\(ip)>", reason: .routedAddress),
        Variant(name: "percent hack via hostname", from: "<antispam@\(ip)>", to: "<relaytest%nmap.scanme.org@\(host)>", reason: .routedAddress),
        Variant(name: "quoted whole address", from: "<antispam@\(ip)>", to: "<\"relaytest@nmap.scanme.org\">", reason: .routedAddress),
        Variant(name: "quoted percent", from: "<antispam@\(ip)>", to: "<\"relaytest%nmap.scanme.org\">", reason: .routedAddress),
        Variant(name: "a@b@[ip]", from: "<antispam@\(ip)>", to: "<relaytest@nmap.scanme.org@\(ip)>", reason: .routedAddress),
        Variant(name: "quoted local part + IP literal", from: "<antispam@\(ip)>", to: "<\"relaytest@nmap.scanme.org\"@\(ip)>", reason: .routedAddress),
        Variant(name: "a@b@host", from: "<antispam@\(ip)>", to: "<relaytest@nmap.scanme.org@\(host)>", reason: .routedAddress),
        Variant(name: "source route via IP literal", from: "<antispam@\(ip)>", to: "<@\(ip):relaytest@nmap.scanme.org>", reason: .routedAddress),
        Variant(name: "source route via hostname", from: "<antispam@\(ip)>", to: "<@\(host):relaytest@nmap.scanme.org>", reason: .routedAddress),
        Variant(name: "bang path without host", from: "<antispam@\(ip)>", to: "<nmap.scanme.org!relaytest>", reason: .routedAddress),
        Variant(name: "bang path via IP literal", from: "<antispam@\(ip)>", to: "<nmap.scanme.org!relaytest@\(ip)>", reason: .routedAddress),
        Variant(name: "bang path via hostname", from: "<antispam@\(ip)>", to: "<nmap.scanme.org!relaytest@\(host)>", reason: .routedAddress),
        Variant(name: "spamtest@localhost sender", from: "<spamtest@localhost>", to: "<relaytest@nmap.scanme.org>", reason: .denied),
        Variant(name: "unqualified sender", from: "<spamtest>", to: "<relaytest@nmap.scanme.org>", reason: .denied),
        Variant(name: "postmaster@host sender", from: "<postmaster@\(host)>", to: "<relaytest@nmap.scanme.org>", reason: .denied),
        Variant(name: "multi-hop source route", from: "<>", to: "<@\(host),@\(ip):relaytest@nmap.scanme.org>", reason: .routedAddress),
        Variant(name: "backslash-quoted @", from: "<>", to: "<relaytest\\@nmap.scanme.org@\(host)>", reason: .routedAddress),
        Variant(name: "percent hack, Postfix rewrote it", from: "<>", to: "<relaytest%nmap.scanme.org@\(host)>", reason: .routedAddress),
    ]

    @Test("refused from an untrusted client", arguments: variants)
    func refusedFromUntrustedClient(_ variant: Variant) {
        let decision = decide(Site.transaction(from: variant.from, to: variant.to), config: Site.config)
        #expect(decision.verdict == .deny)
        #expect(decision.reason == variant.reason)
    }

    @Test("relayed for a trusted client", arguments: variants)
    func allowedFromTrustedClient(_ variant: Variant) {
        let decision = decide(Site.transaction(client: Site.trustedClient, from: variant.from, to: variant.to), config: Site.config)
        #expect(decision == Decision(.allow, .trustedNetwork, "client 192.0.2.77 is in trusted networks"))
    }

    @Test("relayed for an authenticated client", arguments: variants)
    func allowedFromAuthenticatedClient(_ variant: Variant) {
        let decision = decide(Site.transaction(auth: "alice", from: variant.from, to: variant.to), config: Site.config)
        #expect(decision.verdict == .allow)
        #expect(decision.reason == .authenticated)
    }
}
