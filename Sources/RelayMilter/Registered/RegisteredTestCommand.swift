import Foundation
import NIOPosix
import RelayConfig
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import VerdictStore

/// `relay-milter probe --registered HOST[:PORT]`: relays one fixed message
/// through a host the admin answers for, to a one-time alias of theirs, and
/// waits for the daemon to see it come back.
public enum RegisteredTestCommand {
    /// Runs one test: sends, then waits up to `waitSeconds` (within the
    /// window) for the daemon to record the arrival. Returns the test as it
    /// stands at the end; throws why no test may run.
    public static func run(_ target: ProbeTarget, config: RelayMilterConfig, waitSeconds: Int,
                           progress: (String) -> Void) throws -> RegisteredTestRecord {
        if let refusal = RegisteredTestRun.refusal(target, config: config) { throw refusal }
        let store = try VerdictStore(path: config.cache.path)
        let now = Date()
        let message = try RegisteredTestRun.begin(target, config: config, store: store, now: now)
        let token = message.alias.token
        progress("relaying the test message through \(target) to \(message.alias)")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let report = (try? RegisteredTestRun.send(message, to: target, config: config, with: RegisteredSender(group: group)).wait()) ?? RegisteredTestRun.aborted
        try RegisteredTestRun.settle(report, token: token, store: store)
        if let test = try store.registeredTest(token: token), test.state == .waiting {
            progress("\(target) took it (\(test.sentReply)); waiting for it to come back")
        }
        let window = TimeInterval(config.registered.windowSeconds)
        let deadline = now.addingTimeInterval(min(TimeInterval(waitSeconds), window))
        while let test = try store.registeredTest(token: token), test.state == .waiting || test.state == .sending, Date() < deadline {
            Thread.sleep(forTimeInterval: 1)
        }
        guard let test = try store.registeredTest(token: token) else {
            throw RegisteredTestRun.Refusal(description: "the test's row (\(token)) is gone from \(config.cache.path)")
        }
        return test
    }

    /// The test as one JSON object (snake_case keys, ISO 8601 times).
    public static func json(_ test: RegisteredTestRecord) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(test)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    /// What a test came to, for the terminal.
    public static func text(_ test: RegisteredTestRecord, now: Date = Date()) -> String {
        var lines = ["Registered relay test of \(test.host):\(test.port)", "Alias: \(test.alias)"]
        switch test.state {
        case .delivered:
            let delay = test.deliveredAt.map { Int($0.timeIntervalSince(test.createdAt)) } ?? 0
            lines.append("Result: open, confirmed by delivery: the message came back from \(test.deliveredFrom ?? "?") after \(delay) s")
            lines += test.hops.map { "  Received: \($0)" }
        case .refused:
            lines.append("Result: refused (\(test.sentReply)): it does not relay this message")
        case .waiting, .sending:
            lines.append("Result: taken (\(test.sentReply)), not back yet; the daemon settles it when the window ends at \(test.expiresAt)")
        case .undelivered:
            lines.append("Result: accepted_undelivered: taken (\(test.sentReply)) and never delivered within the window")
        case .lapsed:
            lines.append("Result: not sent (\(test.sentReply))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
