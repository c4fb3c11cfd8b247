import Foundation
import NIOPosix
import RelayConfig
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import SharedVerdictStore
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
        let (test, message) = try RegisteredTestRun.begin(target, config: config, store: store, now: now)
        let token = test.token
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        // In a fleet the message may come back through another instance: it
        // must know the alias first. Without the shared database the daemon
        // shares the test at its next exchange, and an instance that does not
        // know the alias yet tempfails it, so the tested host tries again.
        if config.cache.backend == .postgresql, let problem = share(test, config: config, group: group) {
            progress("warning: the test is not in the shared database yet (\(problem)); the daemon shares it at its next exchange")
        }
        progress("relaying the test message through \(target) to \(message.alias)")
        let report = (try? RegisteredTestRun.send(message, to: target, config: config, with: RegisteredSender(group: group)).wait())
            ?? RegisteredTestRun.aborted
        try RegisteredTestRun.settle(report, token: token, store: store)
        if let settled = try store.registeredTest(token: token) {
            if config.cache.backend == .postgresql { _ = share(settled, config: config, group: group) }
            if settled.state == .waiting { progress("\(target) took it (\(settled.sentReply)); waiting for it to come back") }
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

    /// Writes the test to the fleet's shared database; returns what went
    /// wrong, or nil. Blocks the calling (main) thread.
    private static func share(_ test: RegisteredTestRecord, config: RelayMilterConfig, group: MultiThreadedEventLoopGroup) -> String? {
        let shared = config.cache.postgresql
        do {
            try shared.withCommandConnection(on: group) { store in try await store.shareRegisteredTests([test]) }
            return nil
        } catch {
            return "\(shared.host):\(shared.port)/\(shared.database): \(String(reflecting: error))"
        }
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
