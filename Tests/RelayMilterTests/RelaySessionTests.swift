import Foundation
import Logging
import MilterKit
import NIOPosix
@testable import RelayConfig
@testable import RelayMilter
import RelayPolicy
import RelayProbeNIO
import Testing
import VerdictStore

/// A session as the MTA drives it, with no libmilter and no process: the
/// callbacks in order, Postfix's macros, and what comes back.
struct RelaySessionTests {
    static func factory(_ edit: (inout RelayMilterConfig) -> Void = { _ in }) -> (RelaySessionFactory, VerdictIndex) {
        var config = RelayMilterConfig.defaults
        config.policy.localDomains = [try! DomainPattern(parsing: "example.org")]
        config.policy.trustedNetworks = [try! NetworkBlock(parsing: "192.0.2.0/24")]
        edit(&config)
        let index = VerdictIndex()
        let metrics = RelayMetrics(version: "test")
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let scheduler = ProbeScheduler(prober: SMTPProber(group: MultiThreadedEventLoopGroup.singleton), index: index,
                                       logger: quiet, metrics: metrics)
        let factory = RelaySessionFactory(store: ConfigStore(config), logger: quiet,
                                          hostVerdicts: HostVerdicts(index: index, scheduler: scheduler, metrics: metrics),
                                          metrics: metrics, stats: StatsCollector())
        return (factory, index)
    }

    /// Connect, MAIL and one RCPT as Postfix sends them; the RCPT's answer.
    static func transaction(_ factory: RelaySessionFactory, client: String, rcpt: String, mailer: String = "smtp",
                            auth: String? = nil) -> (mail: MilterResponse, rcpt: MilterResponse) {
        let session = factory.makeSession()
        defer { session.close() }
        _ = session.connect(ConnectInfo(hostname: "[\(client)]", address: client, port: 40000,
                                        macros: Macros(["{client_addr}": client, "v": "Postfix 3.7.11"])))
        var mailMacros = ["i": "4ABC"]
        if let auth { mailMacros["{auth_authen}"] = auth }
        let mail = session.mailFrom(EnvelopeAddress(address: "<sender@elsewhere.example>", macros: Macros(mailMacros)))
        let domain = rcpt.split(separator: "@").last.map(String.init) ?? ""
        let answer = session.recipient(EnvelopeAddress(address: "<\(rcpt)>", macros: Macros([
            "{rcpt_addr}": rcpt, "{rcpt_host}": domain, "{rcpt_mailer}": mailer,
        ])))
        return (mail, answer)
    }

    @Test func refusesARelayForAStrangerAndLetsTheRestThrough() {
        let (factory, _) = Self.factory()
        guard case .reject(let reply?) = Self.transaction(factory, client: "203.0.113.9", rcpt: "victim@elsewhere.example").rcpt else {
            Issue.record("relay attempt not refused"); return
        }
        #expect(reply.code == "550" && reply.enhancedCode == "5.7.1")
        #expect(reply.lines == ["<victim@elsewhere.example>: Relay access denied (relay.denied)"])
        #expect(Self.transaction(factory, client: "203.0.113.9", rcpt: "bob@example.org", mailer: "virtual").rcpt == .continue)
        #expect(Self.transaction(factory, client: "192.0.2.7", rcpt: "friend@elsewhere.example").rcpt == .continue)
        #expect(Self.transaction(factory, client: "203.0.113.9", rcpt: "friend@elsewhere.example", auth: "alice").rcpt == .continue)
        #expect(factory.openSessions.current == 0) // each session closed
    }

    @Test func refusesAHostFoundOpenAtMailFrom() {
        let (factory, index) = Self.factory()
        let now = Date()
        index.update(VerdictRecord(host: "203.0.113.20", verdict: "open", testedAt: now, expiresAt: now.addingTimeInterval(3600),
                                   acceptedTests: ["a", "b"], testsRun: 20, source: .probe))
        guard case .reject(let reply?) = Self.transaction(factory, client: "203.0.113.20", rcpt: "bob@example.org", mailer: "virtual").mail else {
            Issue.record("open relay not refused at MAIL"); return
        }
        #expect(reply.code == "550" && reply.lines.joined().contains("Your host 203.0.113.20 was found to be an open relay"))
    }

    @Test func logOnlyRefusesNothing() {
        let (factory, _) = Self.factory { $0.rules.mode = .logOnly }
        #expect(Self.transaction(factory, client: "203.0.113.9", rcpt: "victim@elsewhere.example").rcpt == .continue)
    }
}
