import CLibFuzzer
import Glibc
import RelayPolicy

/// Any bytes as an envelope recipient (and as the MTA's rewritten form of it):
/// parsing and deciding must never crash, and the invariants the relay rules
/// promise must hold for whatever parses.
/// Static, so initialised on first use: libFuzzer's runtime may bring its own
/// main, and then main.swift's top-level code (and its globals) never runs.
enum Site {
    static let config = PolicyConfig(
        localDomains: [try! DomainPattern(parsing: "example.org"), try! DomainPattern(parsing: ".example.org"),
                       try! DomainPattern(parsing: "bücher.example")],
        relayDomains: [try! DomainPattern(parsing: "backup.example")],
        trustedNetworks: [try! NetworkBlock(parsing: "192.0.2.0/24")],
        localIPLiterals: [IPAddress("198.51.100.25")!]
    )
}

// Also under libFuzzer's own name: its runtime's main (linked in with it) refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddress(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    let config = Site.config

    if let address = try? MailAddress(parsing: text) {
        let destination = Destination.classify(address, config: config)
        // Routing of any kind never counts as local.
        precondition(!(address.isRouted && destination.isLocalDestination), "routed address classified local: \(text)")
    }
    // An untrusted client may reach only a local or relay destination.
    let untrusted = decide(RelayTransaction(clientAddress: IPAddress("203.0.113.9"), authenticatedUser: nil,
                                            sender: text, recipient: text, mtaRouting: MTARouting()), config: config)
    if untrusted.verdict == .allow {
        precondition(Destination.classify(raw: text, config: config).isLocalDestination, "relay allowed for \(text)")
    }
    // The MTA's rewritten address can only make the answer stricter (an empty
    // one counts as not sent). The one exception: a bare user name through a
    // local transport, which is how Sendmail names its local mailer's recipient;
    // but never one with routing left in it.
    let rewritten = decide(RelayTransaction(clientAddress: IPAddress("203.0.113.9"), authenticatedUser: nil,
                                            sender: "", recipient: "<user@example.org>",
                                            mtaRouting: MTARouting(transport: "local", address: text)), config: config)
    if rewritten.verdict == .allow, !text.isEmpty {
        let bareUser = (try? MailAddress(parsing: text)).map { $0.domain == nil && !$0.isRouted && !$0.isNull } ?? false
        precondition(bareUser || Destination.classify(raw: text, config: config).isLocalDestination, "rewritten \(text) allowed")
    }
    // After the MTA's alias tables (Sendmail's virtusertable), a local
    // recipient's forward passes only to a parsable address with no routing
    // syntax left in it.
    let forwarded = decide(RelayTransaction(clientAddress: IPAddress("203.0.113.9"), authenticatedUser: nil,
                                            sender: "", recipient: "<user@example.org>",
                                            mtaRouting: MTARouting(transport: "esmtp", address: text, resolvedAfterAliases: true)),
                           config: config)
    if forwarded.verdict == .allow, !text.isEmpty {
        let plain = (try? MailAddress(parsing: text)).map { !$0.isRouted && !$0.isNull } ?? false
        precondition(plain, "a forward to \(text) allowed")
    }
    // Through a remote transport, even a bare user name never passes.
    let remote = decide(RelayTransaction(clientAddress: IPAddress("203.0.113.9"), authenticatedUser: nil,
                                         sender: "", recipient: "<user@example.org>",
                                         mtaRouting: MTARouting(transport: "esmtp", address: text)), config: config)
    precondition(remote.verdict != .allow, "a recipient through esmtp allowed (rewritten \(text))")
    // Addresses and networks print in a form that parses back to the same value.
    if let ip = IPAddress(text) {
        precondition(IPAddress("\(ip)") == ip, "IP address \(text) does not round-trip")
    }
    if let block = try? NetworkBlock(parsing: text) {
        precondition((try? NetworkBlock(parsing: "\(block)")) == block, "network \(text) does not round-trip")
    }
    if let domain = try? DomainName(parsing: text) {
        precondition((try? DomainName(parsing: domain.text)) == domain, "domain \(text) does not round-trip")
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzAddress))
