/// A registered test's sending half as a state machine: events in, actions
/// out, no I/O (the NIO driver moves lines and timers, as for
/// `ProbeStateMachine`). It relays the one fixed message to the one alias:
/// banner, EHLO (HELO if refused), MAIL, one RCPT, DATA, the message, QUIT.
/// It never sends a second recipient or a second message: no state leads
/// back to RCPT or DATA.
public struct RegisteredDeliveryStateMachine: Sendable {
    public typealias Event = ProbeStateMachine.Event

    public enum Action: Sendable, Equatable {
        /// Write this line (the driver adds CRLF); the lines of one `handle`
        /// call go out together (the message after DATA's 354).
        case send(String)
        case close
        case finish(RegisteredDeliveryReport)
    }

    private enum State: Sendable, Equatable {
        case connecting, awaitingBanner, awaitingGreeting(extended: Bool), awaitingMail, awaitingRcpt, awaitingData,
             awaitingMessageReply, finished
    }

    private let message: RegisteredTestMessage
    private let heloName: String
    private var state = State.connecting
    private var assembler = ReplyAssembler()
    private var banner = ""
    private var transcript: [String] = []

    public init(message: RegisteredTestMessage, heloName: String) {
        self.message = message
        self.heloName = heloName
    }

    public var isFinished: Bool { state == .finished }

    public mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.finished, _):
            return []
        case (.connecting, .connected):
            state = .awaitingBanner
            return []
        case (.connecting, .connectFailed(let failure)):
            return finish(.failed("cannot connect: \(failure)"), reply: nil, close: false)
        case (_, .line(let line)):
            switch assembler.feed(line) {
            case .incomplete: return []
            case .malformed(let text): return finish(.failed("not SMTP: \"\(text.prefix(60))\""), reply: nil)
            case .complete(let reply):
                transcript.append("< \(reply.code) \(reply.firstText.prefix(120))")
                return handle(reply)
            }
        case (_, .peerClosed):
            return finish(.failed("the host closed the connection \(stepName)"), reply: nil, close: false)
        case (_, .timedOut):
            return finish(.failed("timed out \(stepName)"), reply: nil)
        case (_, .connected), (_, .connectFailed):
            return finish(.failed("unexpected connection event"), reply: nil)
        }
    }

    private mutating func handle(_ reply: SMTPResponse) -> [Action] {
        switch state {
        case .awaitingBanner:
            banner = String(reply.firstText.prefix(200))
            guard reply.code == 220 else { return refusal(at: .banner, reply) }
            state = .awaitingGreeting(extended: true)
            return send("EHLO \(heloName)")
        case .awaitingGreeting(let extended):
            guard (200..<300).contains(reply.code) else {
                if extended, reply.code != 421 {
                    state = .awaitingGreeting(extended: false)
                    return send("HELO \(heloName)")
                }
                return refusal(at: .greeting, reply)
            }
            state = .awaitingMail
            return send("MAIL FROM:<\(message.contact)>")
        case .awaitingMail:
            guard (200..<300).contains(reply.code) else { return refusal(at: .mail, reply) }
            state = .awaitingRcpt
            return send("RCPT TO:<\(message.alias)>")
        case .awaitingRcpt:
            guard (200..<300).contains(reply.code) else { return refusal(at: .rcpt, reply) }
            state = .awaitingData
            return send("DATA")
        case .awaitingData:
            guard reply.code == 354 else { return refusal(at: .data, reply) }
            state = .awaitingMessageReply
            transcript.append("> (the test message, \(message.lines.count) lines)")
            // Dot-stuffing (RFC 5321 4.5.2), then the end of the message.
            return message.lines.map { .send($0.hasPrefix(".") ? "." + $0 : $0) } + [.send(".")]
        case .awaitingMessageReply:
            guard (200..<300).contains(reply.code) else { return refusal(at: .message, reply) }
            transcript.append("> QUIT")
            return [.send("QUIT")] + finish(.accepted, reply: reply)
        case .connecting, .finished:
            return finish(.failed("a reply before any command"), reply: reply)
        }
    }

    private mutating func send(_ command: String) -> [Action] {
        transcript.append("> \(command)")
        return [.send(command)]
    }

    private mutating func refusal(at step: RegisteredDeliveryReport.Step, _ reply: SMTPResponse) -> [Action] {
        finish(reply.isTransientFailure ? .deferred(step) : .refused(step), reply: reply)
    }

    private var stepName: String {
        switch state {
        case .connecting, .awaitingBanner: "before its banner"
        case .awaitingGreeting: "at EHLO"
        case .awaitingMail: "at MAIL"
        case .awaitingRcpt: "at RCPT"
        case .awaitingData: "at DATA"
        case .awaitingMessageReply: "after the message"
        case .finished: "after the end"
        }
    }

    private mutating func finish(_ outcome: RegisteredDeliveryReport.Outcome, reply: SMTPResponse?, close: Bool = true) -> [Action] {
        state = .finished
        let report = RegisteredDeliveryReport(outcome: outcome, reply: reply, banner: banner, transcript: transcript)
        return (close ? [.close] : []) + [.finish(report)]
    }
}

/// How the sending went: what the host did with the one message. Whether it
/// relayed it is for the arrival (or its absence) to say.
public struct RegisteredDeliveryReport: Sendable, Equatable {
    public enum Step: String, Sendable, Equatable {
        case banner, greeting, mail, rcpt, data, message
    }

    public enum Outcome: Sendable, Equatable {
        /// The host took the message (2xx after its end).
        case accepted
        /// Refused for good at this step: the host does not relay it.
        case refused(Step)
        /// Refused for now at this step (4xx): try again later.
        case deferred(Step)
        /// No SMTP conversation to judge by.
        case failed(String)
    }

    public let outcome: Outcome
    /// The reply that decided it, if one did.
    public let reply: SMTPResponse?
    public let banner: String
    /// Commands sent and the first line of each reply, for the evidence.
    public let transcript: [String]

    public init(outcome: Outcome, reply: SMTPResponse?, banner: String, transcript: [String]) {
        self.outcome = outcome
        self.reply = reply
        self.banner = banner
        self.transcript = transcript
    }
}
