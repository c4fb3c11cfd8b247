// Round-trip times per protocol stage, collected per worker and merged at the end.
#if canImport(Glibc)
import Glibc
#endif

enum Stage: String, CaseIterable, Codable {
    /// Socket connect plus OPTNEG: what an MTA pays per SMTP session before CONNECT.
    case open
    case connect, helo, mail, rcpt, data, header, eoh, body, eom
    /// MAIL through EOM (or through the abort of a refused message).
    case transaction
}

func sleepNanoseconds(_ duration: UInt64) {
    var request = timespec(tv_sec: Int(duration / 1_000_000_000), tv_nsec: Int(duration % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

struct StageTimes: Sendable {
    private(set) var samples: [Stage: [UInt64]] = [:]

    mutating func record(_ stage: Stage, since start: UInt64) {
        samples[stage, default: []].append(monotonicNanoseconds() &- start)
    }

    mutating func merge(_ other: StageTimes) {
        for (stage, values) in other.samples {
            samples[stage, default: []] += values
        }
    }

    /// p50 and p99 in microseconds, for the stages that saw traffic.
    func summary() -> [StageSummary] {
        Stage.allCases.compactMap { stage in
            guard var values = samples[stage], !values.isEmpty else { return nil }
            values.sort()
            func percentile(_ p: Double) -> Double {
                Double(values[min(values.count - 1, Int(Double(values.count) * p))]) / 1000
            }
            return StageSummary(stage: stage, count: values.count, p50: percentile(0.50), p99: percentile(0.99), max: Double(values.last!) / 1000)
        }
    }
}

struct StageSummary: Codable {
    let stage: Stage
    let count: Int
    let p50: Double
    let p99: Double
    let max: Double
}
