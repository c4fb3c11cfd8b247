import RelayPolicy

/// The site every policy test runs against: `example.org` is ours, our MX is
/// `mx.example.org` at 198.51.100.25, and we are backup MX for `backup.example`.
enum Site {
    static let serverName = "mx.example.org"
    static let serverIP = "198.51.100.25"
    static let untrustedClient = IPAddress("203.0.113.9")!
    static let trustedClient = IPAddress("192.0.2.77")!

    static let config = PolicyConfig(
        localDomains: [try! DomainPattern(parsing: "example.org"), try! DomainPattern(parsing: ".example.org"),
                       try! DomainPattern(parsing: "bücher.example")],
        relayDomains: [try! DomainPattern(parsing: "backup.example")],
        trustedNetworks: [try! NetworkBlock(parsing: "192.0.2.0/24"), try! NetworkBlock(parsing: "2001:db8:1::/48")],
        trustAuthenticated: true,
        localIPLiterals: [IPAddress(serverIP)!]
    )

    /// A fake transaction with sensible defaults, overridden per test.
    static func transaction(
        client: IPAddress? = untrustedClient,
        auth: String? = nil,
        from sender: String = "<someone@elsewhere.example>",
        to recipient: String,
        transport: String? = nil,
        nextHop: String? = nil,
        rewritten: String? = nil,
        afterAliases: Bool = false
    ) -> RelayTransaction {
        RelayTransaction(
            clientAddress: client, authenticatedUser: auth, sender: sender, recipient: recipient,
            mtaRouting: MTARouting(transport: transport, nextHop: nextHop, address: rewritten, resolvedAfterAliases: afterAliases)
        )
    }
}
