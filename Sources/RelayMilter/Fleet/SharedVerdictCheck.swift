import Foundation
import RelayConfig
import RelayPolicy
import RelayProbe
import VerdictStore

/// What a verdict read from the fleet's shared table must be for this
/// instance to take it. Whoever can write that table could otherwise have any
/// address refused fleet-wide and published in the zone, for as long as they
/// like: so only verdicts relay-milter knows, for a well-formed address in
/// its canonical spelling, tested no later than now (give or take clock
/// skew) and expiring within the longest TTL a config may set.
enum SharedVerdictCheck {
    enum Refusal: String, Sendable {
        case unknownVerdict = "unknown_verdict"
        case badHost = "bad_host"
        case badTimes = "bad_times"
    }

    /// How far ahead of our clock another instance's may run.
    static let clockSkew: TimeInterval = 3600

    static func refusal(of record: VerdictRecord, now: Date) -> Refusal? {
        guard ProbeVerdict(rawValue: record.verdict) != nil else { return .unknownVerdict }
        guard let address = IPAddress(record.host), address.description == record.host else { return .badHost }
        guard record.testedAt <= now.addingTimeInterval(clockSkew), record.expiresAt >= record.testedAt,
              record.expiresAt <= now.addingTimeInterval(Double(DurationText.maximumSeconds) + clockSkew)
        else { return .badTimes }
        return nil
    }
}
