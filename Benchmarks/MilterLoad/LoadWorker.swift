// One simulated SMTP server process: SMTP sessions one after another, each on
// its own milter connection, in the order Postfix's smtpd sends the commands.

struct LoadSettings: Sendable {
    let recipients: Int
    let messagesPerSession: Int
    let seed: UInt64
    /// How many distinct outside client addresses the sessions come from.
    let clients: Int
}

/// What the milter answered, per message kind: "continue", "reject", ...
struct Outcomes: Codable, Sendable {
    var byKind: [String: [String: Int]] = [:]

    mutating func count(_ kind: MessageKind, _ outcome: String) {
        byKind[kind.rawValue, default: [:]][outcome, default: 0] += 1
    }

    mutating func merge(_ other: Outcomes) {
        for (kind, counts) in other.byKind {
            for (outcome, n) in counts { byKind[kind, default: [:]][outcome, default: 0] += n }
        }
    }
}

struct WorkerResult: Sendable {
    var transactions = 0
    var times = StageTimes()
    var outcomes = Outcomes()
    var negotiatedSteps: UInt32 = 0
    var error: String?
}

final class LoadWorker {
    private let endpoint: MilterEndpoint
    private let settings: LoadSettings
    private let mix: MessageMix
    private var generator: SeededGenerator
    private var serial: UInt64
    private(set) var result = WorkerResult()

    init(index: Int, settings: LoadSettings, endpoint: MilterEndpoint, mix: MessageMix) {
        self.settings = settings
        self.endpoint = endpoint
        self.mix = mix
        generator = SeededGenerator(seed: settings.seed &+ UInt64(index) &* 7919)
        serial = UInt64(index) << 40
    }

    /// Runs sessions until `deadline` (monotonic ns); counts only those started after `recordFrom`.
    /// With `interval` (ns) each session starts on a fixed schedule, as mail
    /// arrives at an MX, rather than as soon as the last one ended; a worker
    /// that falls behind starts the next one at once.
    func run(recordFrom: UInt64, deadline: UInt64, interval: UInt64?, firstStart: UInt64) {
        var nextStart = firstStart
        while monotonicNanoseconds() < deadline {
            if let interval {
                let now = monotonicNanoseconds()
                if nextStart > now { sleepNanoseconds(nextStart - now) }
                nextStart += interval
            }
            let recording = monotonicNanoseconds() >= recordFrom
            do {
                var times = StageTimes()
                var outcomes = Outcomes()
                let transactions = try session(times: &times, outcomes: &outcomes)
                if recording {
                    result.times.merge(times)
                    result.outcomes.merge(outcomes)
                    result.transactions += transactions
                }
            } catch {
                result.error = "\(error)"
                return
            }
        }
    }

    private func session(times: inout StageTimes, outcomes: inout Outcomes) throws -> Int {
        serial &+= 1
        let kind = mix.pick(using: &generator)
        var script = SessionScript(kind: kind, serial: serial, recipients: settings.recipients, clients: settings.clients)

        let start = monotonicNanoseconds()
        let connection = try MilterConnection(endpoint)
        guard let options = NegotiatedOptions(try connection.ask(MTACommand.negotiate())) else {
            throw ConnectionError(description: "the milter did not answer OPTNEG")
        }
        times.record(.open, since: start)
        result.negotiatedSteps = options.steps
        let macroNames = options.macroLists.isEmpty ? PostfixDefaultMacros.byStage : options.macroLists

        /// Queues an event's macros as Postfix sends them: even for an event the
        /// milter skips, and even with no values; a stage the milter gave no
        /// list for gets Postfix's default list.
        func queueMacros(_ macroStage: UInt32, _ command: Character, recipient: String? = nil) {
            let names = macroNames[macroStage] ?? PostfixDefaultMacros.byStage[macroStage] ?? []
            let pairs = names.compactMap { name in script.macro(name, recipient: recipient).map { (name, $0) } }
            connection.write(MTACommand.macros(for: command, pairs))
        }

        /// Sends one event as Postfix does: its macros and its command in one
        /// write, then waits for the answer unless the milter asked for none.
        /// An event left unanswered stays queued and goes out with the next one.
        func step(_ stage: Stage, _ packet: MilterPacket, skip: UInt32, noReply: UInt32, macroStage: UInt32?,
                  recipient: String? = nil, macroCommand: Character? = nil) throws -> MilterPacket? {
            if let macroStage, let macroCommand { queueMacros(macroStage, macroCommand, recipient: recipient) }
            guard !options.skips(skip) else { return nil }
            connection.write(packet)
            guard noReply == 0 || !options.skips(noReply) else { return nil }
            let begin = monotonicNanoseconds()
            let reply = try connection.receive()
            times.record(stage, since: begin)
            return reply
        }

        if let reply = try step(.connect, MTACommand.connect(hostname: script.clientName, address: script.clientAddress, port: 40000),
                                skip: MilterStep.noConnect, noReply: MilterStep.noReplyConnect, macroStage: 0, macroCommand: "C"),
           !reply.letsTransactionGoOn {
            outcomes.count(kind, "connect:\(reply.outcome)")
            connection.write(MTACommand.quit)
            return 0
        }
        _ = try step(.helo, MTACommand.helo(script.clientName), skip: MilterStep.noHelo, noReply: MilterStep.noReplyHelo, macroStage: 1, macroCommand: "H")

        var transactions = 0
        for message in 0..<settings.messagesPerSession {
            if message > 0 {
                serial &+= 1
                script = SessionScript(kind: kind, serial: serial, recipients: settings.recipients, clients: settings.clients)
            }
            let begin = monotonicNanoseconds()
            if let reply = try step(.mail, MTACommand.mail(script.sender), skip: MilterStep.noMail, noReply: MilterStep.noReplyMail,
                                    macroStage: 2, macroCommand: "M"), !reply.letsTransactionGoOn {
                outcomes.count(kind, "mail:\(reply.outcome)")
                connection.write(MTACommand.abort)
                times.record(.transaction, since: begin)
                transactions += 1
                continue
            }
            var accepted = 0
            for recipient in script.recipients {
                let reply = try step(.rcpt, MTACommand.rcpt(recipient), skip: MilterStep.noRcpt, noReply: MilterStep.noReplyRcpt,
                                     macroStage: 3, recipient: recipient, macroCommand: "R")
                if let reply, !reply.letsTransactionGoOn {
                    outcomes.count(kind, "rcpt:\(reply.outcome)")
                } else {
                    accepted += 1
                }
            }
            if accepted == 0 {
                // Every recipient refused: the MTA never reaches DATA and tells the milter so.
                connection.write(MTACommand.abort)
                times.record(.transaction, since: begin)
                transactions += 1
                continue
            }
            _ = try step(.data, MTACommand.data, skip: MilterStep.noData, noReply: MilterStep.noReplyData, macroStage: 4, macroCommand: "T")
            for (name, value) in [("From", script.sender), ("To", script.recipients[0]), ("Subject", "load \(serial)"), ("Message-ID", "<\(serial)@bench.example>")] {
                _ = try step(.header, MTACommand.header(name, value), skip: MilterStep.noHeaders, noReply: MilterStep.noReplyHeader, macroStage: nil)
            }
            _ = try step(.eoh, MTACommand.endOfHeaders, skip: MilterStep.noEndOfHeaders, noReply: MilterStep.noReplyEndOfHeaders, macroStage: 6, macroCommand: "N")
            _ = try step(.body, MTACommand.body("A short message from the milter load driver.\r\n"), skip: MilterStep.noBody, noReply: MilterStep.noReplyBody, macroStage: nil)
            queueMacros(5, "E")
            connection.write(MTACommand.endOfMessage)
            let eomStart = monotonicNanoseconds()
            var final = try connection.receive()
            var modifications = 0
            while !final.isFinalReply {
                modifications += 1
                final = try connection.receive()
            }
            times.record(.eom, since: eomStart)
            times.record(.transaction, since: begin)
            outcomes.count(kind, "eom:\(final.outcome)" + (modifications > 0 ? "+modified" : ""))
            transactions += 1
        }
        connection.write(MTACommand.quit)
        return transactions
    }
}

extension MilterPacket {
    /// Accept and continue let the MTA go on; any other answer ends the step.
    var letsTransactionGoOn: Bool { commandCharacter == "c" || commandCharacter == "a" }

    /// Everything but a header or recipient change ends end-of-message.
    var isFinalReply: Bool { "acrtdy".contains(commandCharacter) }

    /// The answer in words; a custom reply ("y") by its SMTP code.
    var outcome: String {
        switch commandCharacter {
        case "c": return "continue"
        case "a": return "accept"
        case "r": return "reject"
        case "t": return "tempfail"
        case "d": return "discard"
        case "y":
            let code = String(decoding: payload.prefix(3), as: UTF8.self)
            return (code.hasPrefix("4") ? "tempfail " : "reject ") + code
        default: return String(commandCharacter)
        }
    }
}
