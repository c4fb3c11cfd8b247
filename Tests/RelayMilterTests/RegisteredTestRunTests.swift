import Foundation
@testable import RelayConfig
@testable import RelayMilter
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import Testing
import VerdictStore

/// Which registered tests the config allows, and which anonymous verdicts
/// the daemon follows up with one.
struct RegisteredTestRunTests {
    static func config(enabled: Bool = true, domain: String = "") -> RelayMilterConfig {
        var config = RelayMilterConfig.defaults
        config.policy.localDomains = [try! DomainPattern(parsing: "example.org")]
        config.registered.enabled = enabled
        config.registered.domain = domain
        config.registered.networks = [try! NetworkBlock(parsing: "198.51.100.0/24"), try! NetworkBlock(parsing: "2001:db8:25::/48")]
        return config
    }

    static func target(_ address: String) -> ProbeTarget { ProbeTarget(address: address, port: 25) }

    @Test func onlyHostsInTheNetworksWithTheAliasDomainOursAndTheDaemonListening() {
        #expect(RegisteredTestRun.refusal(Self.target("198.51.100.7"), config: Self.config()) == nil)
        #expect(RegisteredTestRun.refusal(Self.target("2001:db8:25::1"), config: Self.config()) == nil)
        let stranger = RegisteredTestRun.refusal(Self.target("198.51.101.7"), config: Self.config())
        #expect(stranger?.description.contains("is not in [registered] networks") == true)
        #expect(RegisteredTestRun.refusal(Self.target("not-an-address"), config: Self.config()) != nil)
        let off = RegisteredTestRun.refusal(Self.target("198.51.100.7"), config: Self.config(enabled: false))
        #expect(off?.description.contains("enabled = false") == true)
        let foreign = RegisteredTestRun.refusal(Self.target("198.51.100.7"), config: Self.config(domain: "example.net"))
        #expect(foreign?.description.contains("must be one of [policy] local_domains") == true)
    }

    @Test func theLimitsAreCheckedAsTheTestStarts() throws {
        var config = Self.config()
        config.registered.maxPerHostPerDay = 1
        let store = try VerdictStore(path: NSTemporaryDirectory() + "registered-run-\(UUID()).sqlite")
        let now = Date()
        let (test, message) = try RegisteredTestRun.begin(Self.target("198.51.100.7"), config: config, store: store, now: now)
        #expect(message.alias.domain == "example.org" && "\(message.alias)".hasPrefix("relay-check+"))
        #expect(test.token == message.alias.token && test.host == "198.51.100.7")
        #expect(try store.registeredTest(token: test.token)?.state == .sending)
        #expect(throws: RegisteredTestRun.Refusal.self) {
            try RegisteredTestRun.begin(Self.target("198.51.100.7"), config: config, store: store, now: now.addingTimeInterval(60))
        }
    }

    @Test func onlyVerdictsAnAcceptedRCPTLeftUnsettledAreFollowedUp() {
        let followed = ProbeVerdict.allCases.filter(RegisteredFollowUps.isUnsettled)
        #expect(followed == [.openUnconfirmed, .rcptOnly])
    }
}
