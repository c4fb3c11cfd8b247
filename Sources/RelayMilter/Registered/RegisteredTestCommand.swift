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
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// Why no test may run, or nil when one may: the daemon takes the message
    /// back, the alias domain is ours, the host is one the admin answers for,
    /// and the limits allow one more.
    static func refusal(_ target: ProbeTarget, config: RelayMilterConfig, store: VerdictStore, now: Date) throws -> Refusal? {
        let registered = config.registered
        guard registered.enabled else {
            return Refusal(description: "[registered] enabled = false: the daemon would not take the message back; enable it and restart relay-milter")
        }
        guard config.registeredDomainIsLocal else {
            return Refusal(description: "[registered] domain must be one of [policy] local_domains, so that the message comes back here")
        }
        guard let address = IPAddress(target.address), registered.networks.contains(where: { $0.contains(address) }) else {
            return Refusal(description: "\(target.address) is not in [registered] networks: relay-milter sends a message only through "
                + "hosts you answer for (sending one through anyone else's server is using an open relay, not testing it)")
        }
        if try store.registeredTestCount(host: target.address, since: now.addingTimeInterval(-86400)) >= registered.maxPerHostPerDay {
            return Refusal(description: "\(target.address) had \(registered.maxPerHostPerDay) registered tests in 24 hours ([registered] max_per_host)")
        }
        if try store.registeredTestCount(since: now.addingTimeInterval(-3600)) >= registered.maxPerHour {
            return Refusal(description: "\(registered.maxPerHour) registered tests ran in the last hour ([registered] max_per_hour)")
        }
        return nil
    }

    /// Runs one test: sends, then waits up to `waitSeconds` (within the
    /// window) for the arrival. Returns the test as it stands at the end.
    public static func run(_ target: ProbeTarget, config: RelayMilterConfig, waitSeconds: Int,
                           progress: (String) -> Void) throws -> RegisteredTestRecord {
        let store = try VerdictStore(path: config.cache.path)
        let now = Date()
        if let refusal = try refusal(target, config: config, store: store, now: now) { throw refusal }
        guard let domain = config.registeredDomain, let contact = config.registeredContact else {
            throw Refusal(description: "no domain for the aliases")
        }
        var random = SystemRandomNumberGenerator()
        let alias = RegisteredAlias.make(prefix: config.registered.prefix, domain: domain, using: &random)
        let window = TimeInterval(config.registered.windowSeconds)
        try store.createRegisteredTest(RegisteredTestRecord(
            token: alias.token, host: target.address, port: target.port, alias: "\(alias)",
            createdAt: now, expiresAt: now.addingTimeInterval(window)
        ))
        progress("relaying the test message through \(target) to \(alias)")
        let message = RegisteredTestMessage(contact: contact, alias: alias, host: target.address, date: now)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let sender = RegisteredSender(group: group)
        let report = (try? sender.send(message, to: target, heloName: config.probe.heloName, timeouts: config.probe.timeouts).wait())
            ?? RegisteredDeliveryReport(outcome: .failed("sending aborted"), reply: nil, banner: "", transcript: [])
        let replyText = report.reply.map { "\($0.code) \($0.lines.joined(separator: " "))" } ?? ""
        switch report.outcome {
        case .accepted:
            try store.settleSending(token: alias.token, state: .waiting, reply: replyText)
            progress("\(target) took it (\(replyText)); waiting for it to come back")
        case .refused(let step), .deferred(let step):
            try store.settleSending(token: alias.token, state: .refused, reply: "at \(step.rawValue): \(replyText)")
        case .failed(let why):
            try store.settleSending(token: alias.token, state: .lapsed, reply: why)
        }
        let deadline = min(now.addingTimeInterval(TimeInterval(waitSeconds)), now.addingTimeInterval(window))
        while let test = try store.registeredTest(token: alias.token), test.state == .waiting || test.state == .sending, Date() < deadline {
            Thread.sleep(forTimeInterval: 1)
        }
        return try store.registeredTest(token: alias.token)
            ?? RegisteredTestRecord(token: alias.token, host: target.address, port: target.port, alias: "\(alias)", createdAt: now,
                                    expiresAt: now.addingTimeInterval(window), state: .lapsed, sentReply: "the test's row is gone")
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
