import MilterKit
import RelayPolicy
import Testing
@testable import RelayMilter

/// Each form Postfix and Sendmail really send (their sources, and what the
/// end-to-end conformance suite sees through the real MTAs), read by the one
/// function that reads it.
struct MTAMacrosTests {
    struct ClientCase: CustomTestStringConvertible, Sendable {
        let name: String
        let macro: String?
        let socket: String?
        let expected: String?
        let unknown: MTAMacros.ClientAddress.Unknown?
        var testDescription: String { name }
    }

    static let clientCases: [ClientCase] = [
        ClientCase(name: "IPv4, both MTAs", macro: "192.0.2.1", socket: "192.0.2.1", expected: "192.0.2.1", unknown: nil),
        ClientCase(name: "IPv6 loopback with the tag (Postfix, Sendmail)", macro: "IPv6:::1", socket: "::1", expected: "::1", unknown: nil),
        ClientCase(name: "global IPv6 with the tag", macro: "IPv6:2001:db8::25", socket: "2001:db8::25", expected: "2001:db8::25", unknown: nil),
        ClientCase(name: "the tag in any case", macro: "ipv6:2001:DB8::25", socket: nil, expected: "2001:db8::25", unknown: nil),
        ClientCase(name: "Sendmail's uncompressed form", macro: "IPv6:0:0:0:0:0:0:0:1", socket: nil, expected: "::1", unknown: nil),
        ClientCase(name: "uncompressed global", macro: "IPv6:2001:db8:0:0:0:0:0:25", socket: nil, expected: "2001:db8::25", unknown: nil),
        ClientCase(name: "IPv4-mapped IPv6 with the tag", macro: "IPv6:::ffff:192.0.2.7", socket: nil, expected: "192.0.2.7", unknown: nil),
        ClientCase(name: "IPv4-mapped IPv6 from the socket", macro: nil, socket: "::ffff:192.0.2.7", expected: "192.0.2.7", unknown: nil),
        ClientCase(name: "IPv6 without the tag", macro: "2001:db8::25", socket: nil, expected: "2001:db8::25", unknown: nil),
        ClientCase(name: "link-local with a zone", macro: "IPv6:fe80::1%eth0", socket: nil, expected: "fe80::1", unknown: nil),
        ClientCase(name: "no macro (Postfix not asked): the socket", macro: nil, socket: "198.51.100.4", expected: "198.51.100.4", unknown: nil),
        ClientCase(name: "an unreadable macro falls back to the socket", macro: "somewhere", socket: "198.51.100.4", expected: "198.51.100.4", unknown: nil),
        ClientCase(name: "non-SMTP mail through Postfix", macro: "127.0.0.1", socket: "127.0.0.1", expected: "127.0.0.1", unknown: nil),
        ClientCase(name: "Postfix's unknown client", macro: "unknown", socket: nil, expected: nil, unknown: .unparsable),
        ClientCase(name: "a look-alike of the tag", macro: "IPv\u{16}\u{1A}::1", socket: nil, expected: nil, unknown: .unparsable),
        ClientCase(name: "a dotted quad is no IPv6", macro: "IPv6:192.0.2.1", socket: nil, expected: nil, unknown: .unparsable),
        ClientCase(name: "the tag alone", macro: "IPv6:", socket: nil, expected: nil, unknown: .unparsable),
        ClientCase(name: "a bracketed literal is not what either sends", macro: "[IPv6:::1]", socket: nil, expected: nil, unknown: .unparsable),
        ClientCase(name: "an empty macro and no socket", macro: "", socket: nil, expected: nil, unknown: .absent),
        ClientCase(name: "nothing at all", macro: nil, socket: nil, expected: nil, unknown: .absent),
    ]

    @Test(arguments: clientCases)
    func readsTheClientAddress(_ testCase: ClientCase) {
        let client = MTAMacros.clientAddress(macro: testCase.macro, socketAddress: testCase.socket)
        #expect(client.address?.description == testCase.expected)
        #expect(client.unknown == testCase.unknown)
        if client.unknown != nil { #expect(client.unreadMacro == testCase.macro) }
    }

    @Test(arguments: [
        ("Postfix 3.7.11", MTAKind.postfix),
        ("Postfix 3.12-20260821", .postfix),
        ("8.17.1.9", .sendmail),
        ("8.15.2", .sendmail),
        ("", .unknown),
        ("Exim 4.96", .unknown),
        ("8", .unknown),
    ])
    func tellsTheMTAFromItsVersion(version: String, kind: MTAKind) {
        #expect(MTAKind(version: version) == kind)
    }

    @Test func noVersionIsReadAsPostfixWould() {
        #expect(MTAKind(version: nil) == .unknown)
        #expect(!MTAKind.unknown.resolvesAliasesBeforeMilters)
    }

    @Test func sendmailsRecipientsAreResolvedAfterItsAliases() {
        let macros = Macros(["{rcpt_mailer}": "esmtp", "{rcpt_host}": "remote.example", "{rcpt_addr}": "someone@remote.example"])
        #expect(MTAMacros.routing(macros, mta: .sendmail).resolvedAfterAliases)
        #expect(!MTAMacros.routing(macros, mta: .postfix).resolvedAfterAliases)
        #expect(MTAMacros.routing(macros, mta: .postfix).address == "someone@remote.example")
    }

    /// Postfix's smtpd_milter.c, for a recipient it refused: `554 5.7.1
    /// <x@elsewhere.example>: Relay access denied` becomes these three.
    @Test func aRefusedRecipientIsToldFromAnAcceptedErrorOne() {
        let refused = MTAMacros.routing(Macros(["{rcpt_mailer}": "error", "{rcpt_host}": "5.7.1", "{rcpt_addr}": "Relay access denied"]), mta: .postfix)
        #expect(refused.isRejectedByMTA)
        let aliased = MTAMacros.routing(Macros([
            "{rcpt_mailer}": "error", "{rcpt_host}": "5.1.1 User unknown in virtual alias table", "{rcpt_addr}": "info@alias.example",
        ]), mta: .postfix)
        #expect(!aliased.isRejectedByMTA)
    }
}
