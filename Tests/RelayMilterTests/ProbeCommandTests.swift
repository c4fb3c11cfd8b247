import RelayConfig
import Testing
@testable import RelayMilter

struct ProbeCommandTests {
    @Test(arguments: [
        ("127.0.0.1", nil as String?, true),       // the system picks loopback for a loopback target
        ("127.0.0.1", "127.0.0.2", true),          // loopback to loopback: Postfix's mynetworks trusts it
        ("::1", nil, true),
        ("192.0.2.25", "192.0.2.25", true),        // the target's own address
        ("192.0.2.25", nil, false),
        ("192.0.2.25", "198.51.100.7", false),
        ("127.0.0.1", "198.51.100.7", false),
    ])
    func warnsWhereTheTargetLikelyTrustsTheSource(target: String, source: String?, warns: Bool) {
        #expect((ProbeCommand.sourceWarning(target: target, source: source) != nil) == warns)
    }

    @Test func sourceOverridesTheConfig() throws {
        var config = RelayMilterConfig.defaults
        try ProbeCommand.setSource("198.51.100.7", in: &config)
        #expect(config.probe.sourceAddress.map { "\($0)" } == "198.51.100.7")
        #expect(throws: ProbeCommand.BadSource.self) { try ProbeCommand.setSource("mx.example", in: &config) }
    }
}
