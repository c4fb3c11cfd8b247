import Foundation
import NIOCore
import RelayConfig
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import VerdictStore

/// The steps of a registered test up to the host's reply, shared by
/// `probe --registered` and the daemon's follow-up of an unsettled verdict.
/// The steps that touch the database are functions of a `VerdictStore`: the
/// command runs them on a connection of its own, the daemon on the verdict
/// database's write queue.
enum RegisteredTestRun {
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// Why the config allows no test of `target`, or nil when it allows one:
    /// the daemon takes the message back, the alias domain is ours, and the
    /// host is one the admin answers for. The limits are checked as the test
    /// starts (`begin`).
    static func refusal(_ target: ProbeTarget, config: RelayMilterConfig) -> Refusal? {
        guard config.registered.enabled else {
            return Refusal(description: "[registered] enabled = false: the daemon would not take the message back; enable it and restart relay-milter")
        }
        guard config.registeredDomainIsLocal else {
            return Refusal(description: "[registered] domain must be one of [policy] local_domains, so that the message comes back here")
        }
        guard let address = IPAddress(target.address), config.registered.networks.contains(where: { $0.contains(address) }) else {
            return Refusal(description: "\(target.address) is not in [registered] networks: relay-milter sends a message only through "
                + "hosts you answer for (sending one through anyone else's server is using an open relay, not testing it)")
        }
        return nil
    }

    /// Makes the one-time alias and the test's row, unless a limit is
    /// reached, and returns them with the message to relay. Call after `refusal`.
    static func begin(_ target: ProbeTarget, config: RelayMilterConfig, store: VerdictStore, now: Date) throws
        -> (test: RegisteredTestRecord, message: RegisteredTestMessage) {
        let registered = config.registered
        guard let domain = config.registeredDomain, let contact = config.registeredContact else {
            throw Refusal(description: "no domain for the aliases")
        }
        var random = SystemRandomNumberGenerator()
        let alias = RegisteredAlias.make(prefix: registered.prefix, domain: domain, using: &random)
        let record = RegisteredTestRecord(
            token: alias.token, host: target.address, port: target.port, alias: "\(alias)",
            createdAt: now, expiresAt: now.addingTimeInterval(TimeInterval(registered.windowSeconds))
        )
        switch try store.startRegisteredTest(record, limits: RegisteredTestLimits(perHostPerDay: registered.maxPerHostPerDay,
                                                                                  perHour: registered.maxPerHour)) {
        case .started:
            return (record, RegisteredTestMessage(contact: contact, alias: alias, host: target.address, date: now))
        case .hostLimitReached:
            throw Refusal(description: "\(target.address) had \(registered.maxPerHostPerDay) registered tests in 24 hours ([registered] max_per_host)")
        case .hourLimitReached:
            throw Refusal(description: "\(registered.maxPerHour) registered tests ran in the last hour ([registered] max_per_hour)")
        }
    }

    /// Relays the message through the host. The future fails only when its
    /// event loop shuts down first; `aborted` stands for that.
    static func send(_ message: RegisteredTestMessage, to target: ProbeTarget, config: RelayMilterConfig,
                     with sender: RegisteredSender) -> EventLoopFuture<RegisteredDeliveryReport> {
        sender.send(message, to: target, heloName: config.probe.heloName, timeouts: config.probe.timeouts)
    }

    static let aborted = RegisteredDeliveryReport(outcome: .failed("sending aborted"), reply: nil, banner: "", transcript: [])

    /// Writes what the sending came to: `waiting`, `refused` or `lapsed`,
    /// with the host's reply.
    static func settle(_ report: RegisteredDeliveryReport, token: String, store: VerdictStore) throws {
        let reply = replyText(report)
        let (state, text): (RegisteredTestRecord.State, String) = switch report.outcome {
        case .accepted: (.waiting, reply)
        case .refused(let step), .deferred(let step): (.refused, "at \(step.rawValue): \(reply)")
        case .failed(let why): (.lapsed, why)
        }
        try store.settleSending(token: token, state: state, reply: text)
    }

    /// The host's last reply on one line, "250 2.0.0 Ok: queued as 4ABC"; empty when it sent none.
    static func replyText(_ report: RegisteredDeliveryReport) -> String {
        report.reply.map { "\($0.code) \($0.lines.joined(separator: " "))" } ?? ""
    }
}
