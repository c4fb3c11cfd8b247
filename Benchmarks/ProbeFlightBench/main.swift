// Many open-relay tests in flight at once on one event-loop thread, a share of
// them against tarpits that never answer. Prints the process's thread count
// and memory before and while they run, the wall time, and the verdicts.
// Asserts nothing. Targets must be on loopback (Benchmarks/probe-flight runs
// them). Usage: probe-flight-bench --closed 127.0.0.1:P --tarpit 127.0.0.1:Q
//               [--count 1000] [--tarpit-share 0.33] [--command-timeout 5]
import Foundation
import NIOPosix
import RelayProbe

func status(_ field: String) -> String {
    let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").first { $0.hasPrefix(field + ":") }?
        .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "?"
}

func target(_ text: String) -> ProbeTarget {
    let parts = text.split(separator: ":")
    guard parts.count == 2, parts[0].hasPrefix("127."), let port = Int(parts[1]) else {
        print("targets must be 127.x.x.x:PORT on loopback, got \(text)")
        exit(2)
    }
    return ProbeTarget(address: String(parts[0]), port: port)
}

var closed: ProbeTarget?, tarpit: ProbeTarget?
var count = 1000, tarpitShare = 0.33, commandTimeout: Int64 = 5
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    let value = arguments.next() ?? ""
    switch argument {
    case "--closed": closed = target(value)
    case "--tarpit": tarpit = target(value)
    case "--count": count = Int(value) ?? count
    case "--tarpit-share": tarpitShare = Double(value) ?? tarpitShare
    case "--command-timeout": commandTimeout = Int64(value) ?? commandTimeout
    default: print("unknown argument \(argument)"); exit(2)
    }
}
guard let closed, let tarpit else { print("need --closed and --tarpit"); exit(2) }

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let prober = SMTPProber(group: group)
let configuration = ProbeStateMachine.Configuration(
    battery: BatteryParameters(testDomain: "relay-test.example"), heloName: "bench.example", ipLiteral: "[127.0.0.1]"
)
let timeouts = ProbeTimeouts(connect: .seconds(5), command: .seconds(commandTimeout), total: .seconds(120))
print("before: threads=\(status("Threads")) rss=\(status("VmRSS"))")
let started = ContinuousClock.now
let tarpits = Int(Double(count) * tarpitShare)
let futures = (0..<count).map { i in
    prober.startProbe(i < tarpits ? tarpit : closed, configuration: configuration, timeouts: timeouts)
}
try await Task.sleep(for: .seconds(1))
print("in flight (1 s in): threads=\(status("Threads")) rss=\(status("VmRSS"))")
var verdicts: [String: Int] = [:]
for future in futures {
    let report = try await future.get()
    verdicts[report.verdict.rawValue, default: 0] += 1
}
let elapsed = ContinuousClock.now - started
print("done: \(count) tests (\(tarpits) against a tarpit) in \(elapsed); event-loop threads: 1")
print("verdicts: " + verdicts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
print("after: threads=\(status("Threads")) rss=\(status("VmRSS"))")
try await group.shutdownGracefully()
