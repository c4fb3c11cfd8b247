// milter-load: drives a milter with the MTA side of the milter protocol (v6),
// N concurrent sessions, a mix of local, relay and trusted-client messages, and
// prints transactions/s and per-stage p50/p99. It asserts nothing about speed.
// Only loopback inet addresses and unix sockets are accepted as targets.
import ArgumentParser
import Foundation
import Synchronization

struct MilterLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "milter-load",
        abstract: "Load a milter over the milter protocol, as an MTA would, and print throughput and latency."
    )

    @Option(help: "The milter's socket: unix:/path or inet:PORT@127.x.x.x.")
    var socket: String

    @Option(help: "Concurrent SMTP sessions (one thread and one milter connection each).")
    var sessions = 8

    @Option(help: "Seconds to measure, after the warm-up.")
    var duration = 5.0

    @Option(help: "Seconds of load before measuring starts.")
    var warmup = 1.0

    @Option(help: "Recipients per message.")
    var recipients = 1

    @Option(name: .customLong("messages-per-session"), help: "Messages per SMTP session (milter connection).")
    var messagesPerSession = 1

    @Option(help: "Shares of message kinds: local (to a local domain), relay (outside client, remote domain), trusted (trusted client, remote domain).")
    var mix = "local=70,relay=20,trusted=10"

    @Option(help: "Distinct outside client addresses (127.2.x.y), at most 65000.")
    var clients = 10_000

    @Option(help: "Seed of the mix, so runs against two milters send the same sequence.")
    var seed: UInt64 = 1

    @Option(help: "Transactions per second in all, on a fixed schedule (0: as fast as the milter answers).")
    var rate = 0.0

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard MilterEndpoint(socket) != nil else { throw ValidationError("--socket must be unix:/path or inet:PORT@127.x.x.x") }
        guard MessageMix(mix) != nil else { throw ValidationError("--mix must look like local=70,relay=20,trusted=10") }
        guard (1...65_000).contains(clients) else { throw ValidationError("--clients must be 1...65000") }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard sessions >= 1, recipients >= 1, messagesPerSession >= 1, duration > 0, warmup >= 0 else {
            throw ValidationError("--sessions, --recipients and --messages-per-session must be at least 1, --duration positive")
        }
    }

    func run() throws {
        let endpoint = MilterEndpoint(socket)!
        let mix = MessageMix(mix)!
        let settings = LoadSettings(recipients: recipients, messagesPerSession: messagesPerSession, seed: seed, clients: clients)
        let results = Mutex<[WorkerResult]>([])
        let finished = DispatchGroup()
        let begin = monotonicNanoseconds()
        let recordFrom = begin + UInt64(warmup * 1e9)
        let deadline = recordFrom + UInt64(duration * 1e9)
        // Paced: each session thread starts one SMTP session every `interval`,
        // the threads staggered evenly so arrivals are spread, not bunched.
        let interval = rate > 0 ? UInt64(Double(sessions) / rate * 1e9) : nil
        for index in 0..<sessions {
            finished.enter()
            let firstStart = begin + (interval ?? 0) * UInt64(index) / UInt64(sessions)
            let thread = Thread {
                let worker = LoadWorker(index: index, settings: settings, endpoint: endpoint, mix: mix)
                worker.run(recordFrom: recordFrom, deadline: deadline, interval: interval, firstStart: firstStart)
                let result = worker.result
                results.withLock { $0.append(result) }
                finished.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        finished.wait()
        let elapsed = Double(monotonicNanoseconds() - recordFrom) / 1e9

        var merged = WorkerResult()
        var errors: [String] = []
        for result in results.withLock({ $0 }) {
            merged.transactions += result.transactions
            merged.times.merge(result.times)
            merged.outcomes.merge(result.outcomes)
            merged.negotiatedSteps = result.negotiatedSteps
            if let error = result.error { errors.append(error) }
        }
        let report = LoadReport(
            socket: socket, sessions: sessions, recipients: recipients, messagesPerSession: messagesPerSession, mix: mix.description,
            seconds: elapsed, transactions: merged.transactions, transactionsPerSecond: Double(merged.transactions) / elapsed,
            negotiatedSteps: String(merged.negotiatedSteps, radix: 16), stages: merged.times.summary(),
            outcomes: merged.outcomes.byKind, errors: errors
        )
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.table)
        }
        if !errors.isEmpty { throw ExitCode(1) }
    }
}

struct LoadReport: Codable {
    let socket: String
    let sessions: Int
    let recipients: Int
    let messagesPerSession: Int
    let mix: String
    let seconds: Double
    let transactions: Int
    let transactionsPerSecond: Double
    /// The protocol flags the milter answered OPTNEG with (skipped steps, no-reply steps), in hex.
    let negotiatedSteps: String
    let stages: [StageSummary]
    let outcomes: [String: [String: Int]]
    let errors: [String]

    var table: String {
        var lines = [
            "\(socket): \(transactions) transactions in \(String(format: "%.2f", seconds)) s = \(String(format: "%.0f", transactionsPerSecond))/s"
                + " (\(sessions) sessions, \(recipients) rcpt/msg, \(messagesPerSession) msg/session, mix \(mix), steps 0x\(negotiatedSteps))",
            "stage            count     p50_us     p99_us     max_us",
        ]
        for stage in stages {
            lines.append(stage.stage.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: " %9d %10.1f %10.1f %10.1f", stage.count, stage.p50, stage.p99, stage.max))
        }
        for (kind, counts) in outcomes.sorted(by: { $0.key < $1.key }) {
            lines.append("\(kind): " + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        lines += errors.map { "error: \($0)" }
        return lines.joined(separator: "\n")
    }
}

MilterLoad.main()
