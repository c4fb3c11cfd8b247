@testable import RelayMilter
import RelayPolicy
import Testing

/// Counters move exactly as decisions are recorded, read back from the exposition.
struct RelayMetricsTests {
    static func value(_ exposition: String, _ series: String) -> Double? {
        exposition.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test func decisionsAndConnectionsCountExactly() {
        let metrics = RelayMetrics(version: "test")
        for _ in 0..<3 { metrics.decision(stage: .rcpt, action: .reject, reason: .denied) }
        metrics.decision(stage: .rcpt, action: .accept, reason: .mtaRejected)
        metrics.decision(stage: .mail, action: .tag, reason: .openRelayHost)
        metrics.connectionOpened()
        metrics.connectionOpened()
        metrics.connectionClosed()
        metrics.cacheLookup("miss")
        metrics.cacheEntries(["open": 2, "closed": 5])
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(Self.value(text, #"relay_milter_decisions_total{stage="rcpt",action="reject",reason="relay.denied"}"#) == 3)
        #expect(Self.value(text, #"relay_milter_decisions_total{stage="rcpt",action="accept",reason="relay.mta_rejected"}"#) == 1)
        #expect(Self.value(text, #"relay_milter_decisions_total{stage="mail",action="tag",reason="host.open_relay"}"#) == 1)
        #expect(Self.value(text, #"relay_milter_decisions_total{stage="rcpt",action="accept",reason="relay.local_recipient"}"#) == 0)
        #expect(Self.value(text, "relay_milter_mta_rejected_recipients_total") == 1)
        #expect(Self.value(text, "relay_milter_connections_total") == 2)
        #expect(Self.value(text, "relay_milter_connections_active") == 1)
        #expect(Self.value(text, #"relay_milter_cache_lookups_total{result="miss"}"#) == 1)
        #expect(Self.value(text, #"relay_milter_cache_entries{verdict="closed"}"#) == 5)
        #expect(text.contains("# HELP relay_milter_decisions_total "))
    }

    @Test func recordingOffRecordsNothing() {
        let metrics = RelayMetrics(version: "test", recording: false)
        metrics.decision(stage: .rcpt, action: .reject, reason: .denied)
        metrics.connectionOpened()
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(Self.value(text, #"relay_milter_decisions_total{stage="rcpt",action="reject",reason="relay.denied"}"#) == 0)
        #expect(Self.value(text, "relay_milter_connections_total") == 0)
    }
}
