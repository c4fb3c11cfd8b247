import Foundation
import Logging
import MilterKit
import NIOConcurrencyHelpers
import NIOPosix
@testable import RelayConfig
@testable import RelayMilter
import RelayPolicy
import RelayProbeNIO
import Testing
import VerdictStore

/// A registered test's message as the session meets it, with arrivals faked.
struct RegisteredSessionTests {
    static let token = "abcdefghijklmnopqrstuvwxyz"
    static let alias = "relay-check+\(token)@example.org"

    final class FakeArrivals: RegisteredArrivals, @unchecked Sendable {
        // Guarded by `lock`: sessions may call from any thread.
        private let lock = NIOLock()
        private var recorded: [(token: String, client: String, hops: [String])] = []
        let live: Set<String>
        /// What any other token is: `.unknown` alone, `.unknownHere` in a fleet.
        let otherwise: RegisteredAliasStatus

        init(live: Set<String>, otherwise: RegisteredAliasStatus = .unknown) {
            self.live = live
            self.otherwise = otherwise
        }

        func status(token: String, now: Date) -> RegisteredAliasStatus { live.contains(token) ? .live : otherwise }

        func record(token: String, client: IPAddress?, hops: [String], at now: Date) {
            lock.withLock { recorded.append((token, client.map { "\($0)" } ?? "", hops)) }
        }

        var arrivals: [(token: String, client: String, hops: [String])] { lock.withLock { recorded } }
    }

    static func session(live: Set<String> = [token], otherwise: RegisteredAliasStatus = .unknown, enabled: Bool = true,
                        index: VerdictIndex = VerdictIndex())
        -> (any MilterSession, FakeArrivals) {
        var config = RelayMilterConfig.defaults
        config.policy.localDomains = [try! DomainPattern(parsing: "example.org")]
        config.registered.enabled = enabled
        config.registered.networks = [try! NetworkBlock(parsing: "198.51.100.0/24")]
        let metrics = RelayMetrics(version: "test")
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let scheduler = ProbeScheduler(prober: SMTPProber(group: MultiThreadedEventLoopGroup.singleton), index: index, logger: quiet, metrics: metrics)
        let arrivals = FakeArrivals(live: live, otherwise: otherwise)
        let factory = RelaySessionFactory(store: ConfigStore(config), logger: quiet, registered: arrivals,
                                          hostVerdicts: HostVerdicts(index: index, scheduler: scheduler, metrics: metrics),
                                          metrics: metrics, stats: StatsCollector())
        let session = factory.makeSession()
        _ = session.connect(ConnectInfo(hostname: "[198.51.100.7]", address: "198.51.100.7", port: 40000,
                                        macros: Macros(["{client_addr}": "198.51.100.7", "v": "Postfix 3.7.11"])))
        return (session, arrivals)
    }

    static func rcpt(_ session: any MilterSession, _ address: String) -> MilterResponse {
        session.recipient(EnvelopeAddress(address: "<\(address)>", macros: Macros([
            "{rcpt_addr}": address, "{rcpt_host}": "example.org", "{rcpt_mailer}": "virtual",
        ])))
    }

    @Test func theMessageToALiveAliasIsRecordedAndDiscarded() {
        let (session, arrivals) = Self.session()
        #expect(session.mailFrom(EnvelopeAddress(address: "<postmaster@example.org>", macros: Macros([:]))) == .continue)
        #expect(Self.rcpt(session, Self.alias.uppercased()) == .continue)
        _ = session.header(name: "Received", value: "from mx.tested.example ([198.51.100.7])\r\n\tby mx.example.org")
        _ = session.header(name: "Subject", value: "relay-milter registered relay test of 198.51.100.7")
        _ = session.header(name: "received", value: "from checker.example.org by mx.tested.example")
        #expect(session.endOfMessage(macros: Macros([:])).0 == .discard)
        #expect(arrivals.arrivals.count == 1)
        #expect(arrivals.arrivals.first?.client == "198.51.100.7")
        #expect(arrivals.arrivals.first?.hops == ["from mx.tested.example ([198.51.100.7]) by mx.example.org",
                                                  "from checker.example.org by mx.tested.example"])
        // The next message on the connection is an ordinary one again.
        _ = session.mailFrom(EnvelopeAddress(address: "<a@example.net>", macros: Macros([:])))
        #expect(Self.rcpt(session, "bob@example.org") == .continue)
        #expect(session.endOfMessage(macros: Macros([:])).0 == .continue)
    }

    @Test func anUnknownOrExpiredTokenIsRefusedLikeAnUnknownRecipient() {
        let (session, arrivals) = Self.session(live: [])
        _ = session.mailFrom(EnvelopeAddress(address: "<x@example.net>", macros: Macros([:])))
        guard case .reject(let reply?) = Self.rcpt(session, Self.alias) else { Issue.record("guessed token taken"); return }
        #expect(reply.code == "550" && reply.enhancedCode == "5.1.1")
        #expect(arrivals.arrivals.isEmpty)
    }

    /// In a fleet, a token another instance may have just made is tried again later.
    @Test func aTokenNotKnownHereYetIsTempfailed() {
        let (session, arrivals) = Self.session(live: [], otherwise: .unknownHere)
        _ = session.mailFrom(EnvelopeAddress(address: "<x@example.net>", macros: Macros([:])))
        guard case .tempfail(let reply?) = Self.rcpt(session, Self.alias) else { Issue.record("not tempfailed"); return }
        #expect(reply.code == "450" && reply.enhancedCode == "4.1.1")
        #expect(arrivals.arrivals.isEmpty)
    }

    @Test func theAliasTakesNoOtherRecipient() {
        let (session, _) = Self.session()
        _ = session.mailFrom(EnvelopeAddress(address: "<x@example.net>", macros: Macros([:])))
        #expect(Self.rcpt(session, Self.alias) == .continue)
        guard case .reject(let reply?) = Self.rcpt(session, "bob@example.org") else { Issue.record("company taken"); return }
        #expect(reply.enhancedCode == "5.5.3")
        let (other, _) = Self.session()
        _ = other.mailFrom(EnvelopeAddress(address: "<x@example.net>", macros: Macros([:])))
        #expect(Self.rcpt(other, "bob@example.org") == .continue)
        guard case .reject = Self.rcpt(other, Self.alias) else { Issue.record("alias after another recipient taken"); return }
    }

    @Test func aHostUnderTestRefusedAsOpenStillDeliversItsTestMessage() {
        let index = VerdictIndex()
        let now = Date()
        index.update(VerdictRecord(host: "198.51.100.7", verdict: "open", testedAt: now, expiresAt: now.addingTimeInterval(3600),
                                   acceptedTests: ["a"], testsRun: 20, source: .probe))
        let (session, _) = Self.session(index: index)
        #expect(session.mailFrom(EnvelopeAddress(address: "<x@example.net>", macros: Macros([:]))) == .continue)
        #expect(Self.rcpt(session, Self.alias) == .continue)
        // Any other message of that host is refused as before, at its recipients.
        let (ordinary, _) = Self.session(index: index)
        _ = ordinary.mailFrom(EnvelopeAddress(address: "<x@example.net>", macros: Macros([:])))
        guard case .reject(let reply?) = Self.rcpt(ordinary, "bob@example.org") else { Issue.record("open host's mail taken"); return }
        #expect(reply.lines.joined().contains("was found to be an open relay"))
    }

    @Test func withRegisteredTestsOffAnAliasIsAnOrdinaryRecipient() {
        let (session, arrivals) = Self.session(enabled: false)
        _ = session.mailFrom(EnvelopeAddress(address: "<x@example.net>", macros: Macros([:])))
        #expect(Self.rcpt(session, Self.alias) == .continue)
        #expect(session.endOfMessage(macros: Macros([:])).0 == .continue && arrivals.arrivals.isEmpty)
    }
}
