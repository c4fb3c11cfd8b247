import Foundation
import Testing
import VerdictStore
@testable import RelayMilter

/// Verdicts from the fleet's shared table: whoever can write it must not be
/// able to list any address fleet-wide, or for ever.
struct SharedVerdictCheckTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func record(host: String = "192.0.2.7", verdict: String = "open", tested: TimeInterval = -60,
                       expires: TimeInterval = 7 * 86400) -> VerdictRecord {
        VerdictRecord(host: host, verdict: verdict, testedAt: now + tested, expiresAt: now + expires, detail: "", source: .probe)
    }

    @Test func aVerdictAsRelayMilterWritesItIsTaken() {
        #expect(SharedVerdictCheck.refusal(of: Self.record(), now: Self.now) == nil)
        #expect(SharedVerdictCheck.refusal(of: Self.record(host: "2001:db8::7", verdict: "closed", expires: 3650 * 86400), now: Self.now) == nil)
    }

    @Test(arguments: ["OPEN", "open ", "listed", "", "open\u{1B}[2J"])
    func anUnknownVerdictIsRefused(verdict: String) {
        #expect(SharedVerdictCheck.refusal(of: Self.record(verdict: verdict), now: Self.now) == .unknownVerdict)
    }

    @Test(arguments: ["192.0.2.0/24", "0.0.0.0/0", "mx.example.org", "2001:DB8::7", "2001:db8:0::7", "192.0.2.7 ", ""])
    func anAddressNotInItsCanonicalSpellingIsRefused(host: String) {
        #expect(SharedVerdictCheck.refusal(of: Self.record(host: host), now: Self.now) == .badHost)
    }

    @Test(arguments: [(-60.0, 3651.0 * 86400 + 7200), (86400.0, 7.0 * 86400), (-60.0, -120.0), (0.0, 4_000_000_000.0)])
    func timesBeyondReasonAreRefused(tested: TimeInterval, expires: TimeInterval) {
        #expect(SharedVerdictCheck.refusal(of: Self.record(tested: tested, expires: expires), now: Self.now) == .badTimes)
    }
}
