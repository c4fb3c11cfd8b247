import RelayPolicy
import Testing

/// Relay tricks beyond the public testers' variants (RelayTesterVariantTests):
/// each recipient below is meant to reach a host other than ours, dressed up to
/// look local. From an untrusted client every one must be refused, and for the
/// reason given. The controls at the end are the same spellings aimed at a
/// local mailbox, which must still be delivered: the tricks are refused for
/// what they are, not because every unusual spelling is.
struct RelayTrickTests {
    struct Trick: CustomTestStringConvertible, Sendable {
        let name: String
        let to: String
        let reason: ReasonCode
        var testDescription: String { "\(name): \(to)" }
    }

    static let tricks: [Trick] = [
        // Source routes: the route is ignored for delivery, and it never makes an address local.
        Trick(name: "three-hop source route", to: "<@a.example,@mx.example.org,@[198.51.100.25]:relaytest@evil.example>", reason: .routedAddress),
        Trick(name: "source route with spaces", to: "<@mx.example.org, @[198.51.100.25]:relaytest@evil.example>", reason: .routedAddress),
        Trick(name: "source route to a local domain", to: "<@evil.example:relaytest@example.org>", reason: .routedAddress),
        Trick(name: "source route to a percent hack", to: "<@mx.example.org:relaytest%evil.example@example.org>", reason: .routedAddress),
        // Trailing dots.
        Trick(name: "trailing dot", to: "<relaytest@evil.example.>", reason: .denied),
        Trick(name: "two trailing dots", to: "<relaytest@evil.example..>", reason: .invalidAddress),
        Trick(name: "percent hack at local domain with trailing dot", to: "<relaytest%evil.example@example.org.>", reason: .routedAddress),
        // Mixed case.
        Trick(name: "mixed case", to: "<RelayTest@EVIL.Example>", reason: .denied),
        Trick(name: "mixed-case percent hack", to: "<RELAYTEST%EVIL.EXAMPLE@MX.EXAMPLE.ORG>", reason: .routedAddress),
        Trick(name: "mixed-case bang path", to: "<EVIL.EXAMPLE!RelayTest@Example.Org>", reason: .routedAddress),
        // Backslash quoting.
        Trick(name: "backslash-quoted percent", to: "<relaytest\\%evil.example@example.org>", reason: .routedAddress),
        Trick(name: "backslash-quoted bang", to: "<evil.example\\!relaytest@example.org>", reason: .routedAddress),
        Trick(name: "backslash-quoted @ in quotes", to: "<\"relaytest\\@evil.example\"@example.org>", reason: .routedAddress),
        Trick(name: "escaped backslash before @", to: "<relaytest\\\\@evil.example>", reason: .denied),
        // Suffix and prefix confusion.
        Trick(name: "local domain as a prefix", to: "<relaytest@example.org.evil.example>", reason: .denied),
        Trick(name: "local domain glued to a label", to: "<relaytest@evilexample.org>", reason: .denied),
        Trick(name: "local domain after a hyphen", to: "<relaytest@evil-example.org>", reason: .denied),
        Trick(name: "relay domain as a prefix", to: "<relaytest@backup.example.evil.example>", reason: .denied),
        // Subdomains of domains listed without their subdomains.
        Trick(name: "subdomain of an exact local domain", to: "<relaytest@sub.bücher.example>", reason: .denied),
        Trick(name: "subdomain of a relay domain", to: "<relaytest@mx.backup.example>", reason: .denied),
        // IP literals that are not ours, or not plainly ours.
        Trick(name: "another host's literal", to: "<relaytest@[203.0.113.50]>", reason: .denied),
        Trick(name: "our neighbour's literal", to: "<relaytest@[198.51.100.26]>", reason: .denied),
        Trick(name: "loopback literal", to: "<relaytest@[127.0.0.1]>", reason: .denied),
        Trick(name: "any-address literal", to: "<relaytest@[0.0.0.0]>", reason: .denied),
        Trick(name: "our literal with leading zeros", to: "<relaytest@[198.051.100.025]>", reason: .invalidAddress),
        Trick(name: "our literal as one integer", to: "<relaytest@[3325256729]>", reason: .invalidAddress),
        Trick(name: "our literal with spaces", to: "<relaytest@[ 198.51.100.25 ]>", reason: .invalidAddress),
        Trick(name: "bare IP address", to: "<relaytest@198.51.100.25>", reason: .invalidAddress),
        // IPv6 literals.
        Trick(name: "IPv6 literal", to: "<relaytest@[IPv6:2001:db8::1]>", reason: .denied),
        Trick(name: "IPv6 literal, upper-case tag", to: "<relaytest@[IPV6:2001:DB8::25]>", reason: .denied),
        // Postfix would not see its own address in this form and would relay to it;
        // we refuse mapped forms as literals outright.
        Trick(name: "IPv4-mapped IPv6 form of our literal", to: "<relaytest@[IPv6:::ffff:198.51.100.25]>", reason: .invalidAddress),
        Trick(name: "IPv6 loopback literal", to: "<relaytest@[IPv6:::1]>", reason: .denied),
        Trick(name: "IPv6 literal without its tag", to: "<relaytest@[2001:db8::1]>", reason: .invalidAddress),
        Trick(name: "malformed IPv6 literal", to: "<relaytest@[IPv6:2001:db8::zz]>", reason: .invalidAddress),
        // IDN forms.
        Trick(name: "U-label foreign domain", to: "<relaytest@bücher.evil>", reason: .denied),
        Trick(name: "Cyrillic a in a local domain", to: "<relaytest@ex\u{0430}mple.org>", reason: .denied),
        Trick(name: "ideographic full stop", to: "<relaytest@example\u{3002}org>", reason: .denied),
        Trick(name: "A-label of a local domain as a prefix", to: "<relaytest@xn--bcher-kva.example.evil.example>", reason: .denied),
        Trick(name: "broken A-label", to: "<relaytest@xn--.example>", reason: .invalidAddress),
        // SMTPUTF8 addresses.
        Trick(name: "UTF-8 local part, foreign domain", to: "<δοκιμή@evil.example>", reason: .denied),
        Trick(name: "UTF-8 local part with percent hack", to: "<δοκιμή%evil.example@example.org>", reason: .routedAddress),
        Trick(name: "quoted UTF-8 address at a local domain", to: "<\"δοκιμή@evil.example\"@bücher.example>", reason: .routedAddress),
        Trick(name: "UTF-8 foreign domain", to: "<relaytest@παράδειγμα.δοκιμή>", reason: .denied),
        // Odd spacing and comments.
        Trick(name: "spaces inside the brackets", to: "<  relaytest@evil.example  >", reason: .denied),
        Trick(name: "tab before the address", to: "<\trelaytest@evil.example>", reason: .denied),
        Trick(name: "no brackets", to: "relaytest@evil.example", reason: .denied),
        Trick(name: "trailing comment naming a local domain", to: "<relaytest@evil.example (via example.org)>", reason: .invalidAddress),
        Trick(name: "comment in the local part", to: "<relaytest(example.org)@evil.example>", reason: .invalidAddress),
        Trick(name: "spaces around @", to: "<relaytest @ evil.example>", reason: .invalidAddress),
        Trick(name: "quoted local part with a space", to: "<\"relay test\"@evil.example>", reason: .denied),
        Trick(name: "unbalanced bracket", to: "<relaytest@evil.example", reason: .invalidAddress),
        Trick(name: "doubled brackets", to: "<<relaytest@evil.example>>", reason: .invalidAddress),
        Trick(name: "colon in the domain", to: "<relaytest@example.org:evil.example>", reason: .invalidAddress),
        Trick(name: "percent in the domain", to: "<relaytest@evil.example%example.org>", reason: .invalidAddress),
    ]

    @Test("refused from an untrusted client", arguments: tricks)
    func refused(_ trick: Trick) {
        let decision = decide(Site.transaction(to: trick.to), config: Site.config)
        #expect(decision.verdict == .deny, "\(decision.explanation)")
        #expect(decision.reason == trick.reason, "\(decision.explanation)")
    }

    /// The MTA's own resolution never makes a trick local either: the stricter
    /// of our reading and the MTA's wins.
    @Test("refused even when the MTA calls it local", arguments: tricks)
    func refusedDespiteLocalTransport(_ trick: Trick) {
        let decision = decide(Site.transaction(to: trick.to, transport: "local", nextHop: "mx.example.org"), config: Site.config)
        #expect(decision.verdict == .deny, "\(decision.explanation)")
    }

    static let localSpellings = [
        "<User@EXAMPLE.ORG>", "<user@example.org.>", "<user@Sub.Example.Org>", "<user@xn--bcher-kva.example>",
        "<user@BÜCHER.example>", "<δοκιμή@example.org>", "<user@[198.51.100.25]>", "<  user@example.org >",
        "<\"john smith\"@example.org>", "<postmaster>", "user@backup.example",
    ]

    @Test("local spellings are still delivered", arguments: localSpellings)
    func localSpellingAllowed(_ recipient: String) {
        let decision = decide(Site.transaction(to: recipient), config: Site.config)
        #expect(decision.verdict == .allow, "\(decision.explanation)")
    }
}
