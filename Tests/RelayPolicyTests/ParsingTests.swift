import RelayPolicy
import Testing

struct IPAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"), ("::1", "::1"), ("2001:DB8::0:1", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("2001:db8::192.0.2.1", "2001:db8::c000:201"), ("::", "::"), ("1::", "1::"),
        ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"), ("10.100.9.199", "10.100.9.199"),
        ("100.10.1.0", "100.10.1.0"),
    ])
    func parsesAndFormats(text: String, formatted: String) {
        #expect(IPAddress(text)?.description == formatted)
    }

    @Test(arguments: ["127.1", "256.0.0.1", "01.2.3.4", "1.2.3.4.5", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "", "fe80::1%eth0", "1.2.3.", "12345::",
                      ".1.2.3", "1..2.3", "1.2.3.0004", "1.2.3.４", "1.2.3.-1", " 1.2.3.4", "1.2.3.4 "])
    func rejects(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func networkBlocks() throws {
        let block = try NetworkBlock(parsing: "10.0.0.0/8")
        #expect(block.contains(IPAddress("10.255.1.2")!))
        #expect(!block.contains(IPAddress("11.0.0.1")!))
        #expect(!block.contains(IPAddress("::1")!))
        #expect(try NetworkBlock(parsing: "::/0").contains(IPAddress("2001:db8::1")!))
        #expect(try NetworkBlock(parsing: "127.0.0.1").contains(IPAddress("127.0.0.1")!))
        #expect(throws: NetworkBlock.ParseError.hostBitsSet("192.168.1.1/24", suggestion: "192.168.1.0/24")) {
            try NetworkBlock(parsing: "192.168.1.1/24")
        }
        #expect(throws: NetworkBlock.ParseError.badPrefix("10.0.0.0/33")) { try NetworkBlock(parsing: "10.0.0.0/33") }
        #expect(throws: NetworkBlock.ParseError.notAnAddress("example.org")) { try NetworkBlock(parsing: "example.org") }
    }
}

struct MailAddressTests {
    @Test func strippsSourceRouteAndSplitsAtLastAt() throws {
        let address = try MailAddress(parsing: "<@a.example,@b.example:user@c.example>")
        #expect(address.localPart == "user")
        #expect(address.domain?.description == "c.example")
        #expect(address.hadSourceRoute && address.isRouted)
        #expect(try !MailAddress(parsing: "<user@c.example>").isRouted)
        let double = try MailAddress(parsing: "a@b@c.example")
        #expect(double.localPart == "a@b")
        #expect(double.routingCharacter == "@")
    }

    /// The parser scans bytes; multi-byte characters next to the ASCII
    /// delimiters it looks for must come through whole.
    @Test func keepsMultiByteCharactersWhole() throws {
        let address = try MailAddress(parsing: "  <josé@bücher.example>\t")
        #expect(address.localPart == "josé")
        #expect(address.domain?.description == "xn--bcher-kva.example")
        #expect(try MailAddress(parsing: "\"ünïcødé\\\"q\"@Example.ORG").localPart == "ünïcødé\"q")
        #expect(try MailAddress(parsing: "é").localPart == "é")
        #expect(try MailAddress(parsing: "x@EXAMPLE.org.").domain?.description == "example.org")
        #expect(throws: MailAddress.ParseError.unquotedSpecial(" ")) { try MailAddress(parsing: "a é@example.org") }
    }

    @Test func dequotesLocalParts() throws {
        #expect(try MailAddress(parsing: "<\"a b\"@example.org>").localPart == "a b")
        #expect(try MailAddress(parsing: "<\"x%y\"@example.org>").routingCharacter == "%")
        #expect(try MailAddress(parsing: "<x\\!y@example.org>").routingCharacter == "!")
    }

    @Test func literals() throws {
        #expect(try MailAddress(parsing: "u@[IPv6:2001:db8::1]").domain == .literal(IPAddress("2001:db8::1")!))
        #expect(throws: MailAddress.ParseError.badIPLiteral("300.1.1.1")) { try MailAddress(parsing: "u@[300.1.1.1]") }
        #expect(throws: MailAddress.ParseError.bareIPAddress("1.2.3.4")) { try MailAddress(parsing: "u@1.2.3.4") }
        // A prepended mark before `]` makes one Character with it; the bytes still say what is inside.
        #expect(throws: MailAddress.ParseError.badIPLiteral("1.2.3.4\u{600}")) { try MailAddress(parsing: "u@[1.2.3.4\u{600}]") }
        #expect(throws: MailAddress.ParseError.self) { try MailAddress(parsing: "u@1.2.3.4\u{600}]") }
    }

    @Test(arguments: ["<user@example.org", "@a.example", "<@a.example:>", "\"open@example.org", "u@[1.2.3.4", "u@ex ample.org", "u@-bad.example", "u@a..b"])
    func malformed(raw: String) {
        #expect(throws: MailAddress.ParseError.self) { try MailAddress(parsing: raw) }
    }

    @Test func punycode() throws {
        #expect(try DomainName(parsing: "bücher.example").text == "xn--bcher-kva.example")
        #expect(try DomainName(parsing: "münchen.de").text == "xn--mnchen-3ya.de")
        #expect(try DomainName(parsing: "例え.テスト").text == "xn--r8jz45g.xn--zckzah")
    }

    @Test func domainPatterns() throws {
        let sub = try DomainPattern(parsing: ".example.org")
        #expect(sub.matches(try DomainName(parsing: "a.b.example.org")))
        #expect(!sub.matches(try DomainName(parsing: "example.org")))
        #expect(!sub.matches(try DomainName(parsing: "badexample.org")))
    }
}
