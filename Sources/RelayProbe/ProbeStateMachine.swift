/// The anonymous-mode relay test of one host as a state machine: events in,
/// actions out, no I/O. The NIO driver only moves lines and timers.
///
/// One connection serves all tests where the server allows: banner, EHLO
/// (HELO if refused), then each test as MAIL, RCPT, (DATA), RSET, and QUIT
/// at the end. A `354` to DATA confirms a relay; the machine then closes the
/// connection at once, sends nothing more on it, and carries on with the
/// remaining tests on a new connection (RCPT only: one confirmation is
/// enough). It never sends message content: there is no action that could.
///
/// A server that ends the session early (a 421, a hang-up: error limits)
/// gets a new connection, after a pause, for the tests not yet run; tests
/// refused only for now (4xx) run once more on a new connection at the end.
///
/// Where the EHLO reply offers PIPELINING (RFC 2920), a test's commands go
/// out in groups: MAIL and RCPT together, and after a refusal RSET with the
/// next test's MAIL and RCPT, so that a test takes one round trip instead of
/// three. DATA and QUIT, whose replies change what comes next, always go
/// alone. The replies, and so the verdict, are those of a command at a time:
/// a RCPT that went out with a refused MAIL has its reply read and ignored,
/// where one at a time it would not have been sent.
public struct ProbeStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var battery: BatteryParameters
        public var heloName: String
        /// Send DATA after an accepted RCPT to tell relays from servers that refuse at DATA.
        public var confirmWithData: Bool
        /// The target's address as an SMTP literal, `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
        public var ipLiteral: String
        /// New connections allowed after the server drops us mid-test.
        public var maxReconnects: Int
        /// The wait before the first of those; each next one waits once more
        /// as long. A server that just ended a session for too many errors
        /// (or too many connections) is given time before we come back.
        public var reconnectPause: Duration
        /// Group commands where the server offers PIPELINING.
        public var pipelining: Bool

        public init(battery: BatteryParameters, heloName: String, confirmWithData: Bool = true, ipLiteral: String,
                    maxReconnects: Int = 3, reconnectPause: Duration = .seconds(2), pipelining: Bool = true) {
            self.battery = battery
            self.heloName = heloName
            self.confirmWithData = confirmWithData
            self.ipLiteral = ipLiteral
            self.maxReconnects = maxReconnects
            self.reconnectPause = reconnectPause
            self.pipelining = pipelining
        }
    }

    public enum ConnectFailure: Sendable, Equatable {
        case refused
        case timedOut
        case other(String)
    }

    public enum Event: Sendable, Equatable {
        case connected
        case line(String)
        case peerClosed
        case connectFailed(ConnectFailure)
        /// A command, the banner or the whole test took too long.
        case timedOut
    }

    public enum Action: Sendable, Equatable {
        /// Write this command line (the driver adds CRLF). The sends of one
        /// `handle` call form one pipelined group: write them together.
        case send(String)
        /// Close the connection now, without QUIT.
        case close
        /// Open a new connection to the same target, after waiting this long.
        case reconnect(after: Duration)
        /// Something a watcher may show while the test runs; nothing to do.
        case progress(ProbeProgress)
        /// The test is over.
        case finish(ProbeReport)
    }

    private enum State: Sendable, Equatable {
        case connecting
        case awaitingBanner
        case awaitingGreeting(extended: Bool)
        // Each Int is a step: a position in `schedule`.
        case awaitingMail(Int)
        case awaitingRcpt(Int)
        /// The reply to a RCPT that was pipelined with a MAIL the server refused.
        case awaitingDiscardedRcpt(Int)
        case awaitingData(Int)
        case awaitingReset(next: Int)
        case awaitingQuit
        case finished
    }

    private let configuration: Configuration
    private var state = State.connecting
    private var assembler = ReplyAssembler()
    private var tests: [RelayTest] = []
    private var outcomes: [TestOutcome] = []
    /// The tests to run, in order, as indexes into `tests`: each once, and
    /// then those refused only for now once more (see `batteryDone`).
    private var schedule: [Int] = []
    /// Whether the tests refused only for now were scheduled again.
    private var retried = false
    private var banner = ""
    private var hostname: String?
    private var connections = 0
    private var resumeAt = 0
    private var relayConfirmed = false
    /// Whether this connection's EHLO reply offered PIPELINING (and the configuration allows it).
    private var pipelining = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public var isFinished: Bool { state == .finished }

    public mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.finished, _):
            return []
        case (.connecting, .connected):
            connections += 1
            assembler = ReplyAssembler()
            pipelining = false
            state = .awaitingBanner
            return []
        case (.connecting, .connectFailed(let failure)):
            guard connections == 0 else {
                return finish(fallback: .error, "could not reconnect after step \(resumeAt): \(failure)", close: false)
            }
            switch failure {
            case .refused: return finish(fallback: .noSMTP, "connection refused", close: false)
            case .timedOut: return finish(fallback: .unreachable, "connect timed out", close: false)
            case .other(let why): return finish(fallback: .unreachable, "cannot connect: \(why)", close: false)
            }
        case (_, .line(let line)):
            switch assembler.feed(line) {
            case .incomplete:
                return []
            case .malformed(let text):
                let excerpt = String(text.prefix(60))
                if state == .awaitingBanner, connections == 1 {
                    return finish(fallback: .noSMTP, "not SMTP: \"\(excerpt)\"")
                }
                return finish(fallback: .error, "malformed reply \"\(excerpt)\"")
            case .complete(let response):
                return handle(response)
            }
        case (_, .peerClosed):
            return peerClosed()
        case (_, .timedOut):
            if state == .awaitingBanner || state == .connecting, connections <= 1 {
                return finish(fallback: .unreachable, "no banner in time")
            }
            return finish(fallback: .unreachable, "timed out waiting for a reply")
        case (_, .connected), (_, .connectFailed):
            return finish(fallback: .error, "unexpected connection event")
        }
    }

    private mutating func handle(_ response: SMTPResponse) -> [Action] {
        switch state {
        case .awaitingBanner:
            if connections == 1 { banner = String(response.firstText.prefix(200)) }
            switch response.code {
            case 220:
                if hostname == nil, let name = Self.firstWord(response.firstText), Self.looksLikeHostname(name) { hostname = name }
                state = .awaitingGreeting(extended: true)
                return [.send("EHLO \(configuration.heloName)")]
            case 400..<500:
                return finish(fallback: .tempfail, "banner \(response.code): try later")
            default:
                return finish(fallback: .noSMTP, "refused with a \(response.code) banner")
            }

        case .awaitingGreeting(let extended):
            if response.code == 421 { return finish(fallback: .tempfail, "421 at \(extended ? "EHLO" : "HELO")") }
            guard (200..<300).contains(response.code) else {
                if extended {
                    state = .awaitingGreeting(extended: false)
                    return [.send("HELO \(configuration.heloName)")]
                }
                return finish(fallback: .error, "HELO refused with \(response.code)")
            }
            if let name = Self.firstWord(response.firstText), Self.looksLikeHostname(name) { hostname = name }
            pipelining = extended && configuration.pipelining && Self.offersPipelining(response)
            if tests.isEmpty {
                tests = TestBattery.tests(configuration.battery, hostname: hostname ?? configuration.ipLiteral, ipLiteral: configuration.ipLiteral)
                outcomes = tests.map { TestOutcome(test: $0) }
                schedule = Array(tests.indices)
            }
            return start(resumeAt)

        case .awaitingMail(let step):
            let index = schedule[step]
            if response.code == 421 { return sessionEnded(resumingAt: step, "421 at MAIL") }
            outcomes[index].mailReply = response.code
            outcomes[index].refusalDeniesRelaying = response.deniesRelaying
            let accepted = (200..<300).contains(response.code)
            if pipelining {
                // Its RCPT went out with it.
                state = accepted ? .awaitingRcpt(step) : .awaitingDiscardedRcpt(step)
                return []
            }
            guard accepted else { return reset(next: step + 1) }
            state = .awaitingRcpt(step)
            return [.send("RCPT TO:\(tests[index].rcptTo)")]

        case .awaitingDiscardedRcpt(let step):
            // Most likely 503 (no sender yet); whatever it is, the test ended at MAIL.
            if response.code == 421 { return sessionEnded(resumingAt: step + 1, "421 after a refused MAIL") }
            return reset(next: step + 1)

        case .awaitingRcpt(let step):
            let index = schedule[step]
            if response.code == 421 {
                outcomes[index].mailReply = nil  // to be run again, whole
                return sessionEnded(resumingAt: step, "421 at RCPT")
            }
            if response.code == 452, Self.limitsRecipients(response) {
                // A per-session recipient limit (RFC 5321, 4.5.3.1.10): the
                // rest go on a new session, this test first, run again whole.
                outcomes[index].mailReply = nil
                return [.send("QUIT"), .close] + sessionEnded(resumingAt: step, "452 too many recipients")
            }
            outcomes[index].rcptReply = response.code
            outcomes[index].refusalDeniesRelaying = !(200..<300).contains(response.code) && response.deniesRelaying
            if (200..<300).contains(response.code), configuration.confirmWithData, !relayConfirmed {
                state = .awaitingData(step)
                return [.send("DATA")]
            }
            return reset(next: step + 1)

        case .awaitingData(let step):
            let index = schedule[step]
            outcomes[index].dataReply = response.code
            guard response.code == 354 else {
                if response.code == 421 { return finish(fallback: .tempfail, "421 at DATA") }
                return reset(next: step + 1)
            }
            // The server waits for content. We send none: close at once; the
            // unfinished transaction is discarded. Carry on elsewhere if needed.
            relayConfirmed = true
            resumeAt = step + 1
            let settled = Action.progress(.testSettled(index: index, total: tests.count, outcome: outcomes[index]))
            guard resumeAt < schedule.count else { return [settled] + finish(fallback: .open, "") }
            state = .connecting
            return [settled, .close, .reconnect(after: .zero)]

        case .awaitingReset(let next):
            // After the last test, a server that counts refusals as errors (Postfix's
            // smtpd_hard_error_limit, 20 by default) may end the session here.
            if response.code == 421 { return sessionEnded(resumingAt: next, "421 at RSET") }
            if sendsTestWithReset(next) {
                // The next test's MAIL and RCPT went out with this RSET.
                resumeAt = next
                state = .awaitingMail(next)
                return []
            }
            return start(next)

        case .awaitingQuit:
            return finish(fallback: .closed, "", close: true)

        case .connecting, .finished:
            return []
        }
    }

    private mutating func start(_ step: Int) -> [Action] {
        guard step < schedule.count else { return batteryDone(connectionOpen: true) }
        resumeAt = step
        state = .awaitingMail(step)
        return sendTest(step)
    }

    /// The test's MAIL, and its RCPT too where the server takes pipelined commands.
    private func sendTest(_ step: Int) -> [Action] {
        let test = tests[schedule[step]]
        let mail = Action.send("MAIL FROM:\(test.mailFrom)")
        return pipelining ? [mail, .send("RCPT TO:\(test.rcptTo)")] : [mail]
    }

    /// RSET may start a pipelined group (RFC 2920, 3.1): the next test follows it.
    private func sendsTestWithReset(_ next: Int) -> Bool {
        pipelining && next < schedule.count
    }

    /// After step `next - 1` has its answer: RSET, and the next test where pipelined.
    private mutating func reset(next: Int) -> [Action] {
        state = .awaitingReset(next: next)
        let commands = sendsTestWithReset(next) ? [.send("RSET")] + sendTest(next) : [Action.send("RSET")]
        let index = schedule[next - 1]
        return commands + [.progress(.testSettled(index: index, total: tests.count, outcome: outcomes[index]))]
    }

    /// Every scheduled test has run. Those refused only for now run once
    /// more, on a new connection: postscreen answers 450 until a client has
    /// passed its first visit and hands the next connection to the real
    /// smtpd, and a per-session limit (452 too many recipients) lifts with a
    /// new session. Greylisting answers 450 again, and they stay no evidence.
    private mutating func batteryDone(connectionOpen: Bool) -> [Action] {
        let again = schedule.filter { outcomes[$0].refusedTemporarily }
        guard !retried, !again.isEmpty, connections <= configuration.maxReconnects else {
            guard connectionOpen else { return finish(fallback: .closed, "") }
            state = .awaitingQuit
            return [.send("QUIT")]
        }
        retried = true
        resumeAt = schedule.count
        schedule += again
        state = .connecting
        let pause = configuration.reconnectPause * connections
        let leave: [Action] = connectionOpen ? [.send("QUIT"), .close] : []
        return leave + [.progress(.reconnecting(after: pause, why: "\(again.count) refused only for now")), .reconnect(after: pause)]
    }

    private mutating func peerClosed() -> [Action] {
        switch state {
        case .awaitingQuit:
            return finish(fallback: .closed, "", close: false)
        case .awaitingBanner where connections == 1:
            return finish(fallback: .noSMTP, "closed the connection without a banner", close: false)
        case .awaitingMail(let step), .awaitingRcpt(let step), .awaitingDiscardedRcpt(let step), .awaitingData(let step):
            // The test the server hung up on is not run again: it may be what made it hang up.
            return sessionEnded(resumingAt: step + 1, "dropped the connection", fallback: .error)
        case .awaitingReset(next: let step):
            return sessionEnded(resumingAt: step, "dropped the connection", fallback: .error)
        default:
            return finish(fallback: .error, "closed the connection unexpectedly", close: false)
        }
    }

    /// The server ended the session (a 421, or it hung up) at a test. With
    /// every test answered, that is the end; otherwise the rest run on a new
    /// connection, as often as allowed, and after that what the server did
    /// answer decides (see `finish`).
    private mutating func sessionEnded(resumingAt step: Int, _ why: String, fallback: ProbeVerdict = .tempfail) -> [Action] {
        guard step < schedule.count else { return batteryDone(connectionOpen: false) }
        guard connections <= configuration.maxReconnects else {
            return finish(fallback: fallback, "\(why) \(connections) times", close: false)
        }
        resumeAt = step
        state = .connecting
        // connections counts this session's reconnections plus one.
        let pause = configuration.reconnectPause * connections
        return [.progress(.reconnecting(after: pause, why: why)), .reconnect(after: pause)]
    }

    /// Ends the test. Relaying found so far always wins over `fallback`,
    /// which says why the session ended early; `fallback` `.closed` or
    /// `.open` means it ran to completion and the outcomes decide. A session
    /// that ended early (a 421, a hang-up, a timeout: error limits and
    /// tarpits of closed servers) after the server refused (`TestOutcome.refused`) every
    /// test it answered is `closed` on that evidence, its tests run counted.
    private mutating func finish(fallback: ProbeVerdict, _ why: String, close: Bool = true) -> [Action] {
        // The second run of tests refused for now follows a whole battery:
        // however it ends, the outcomes decide.
        let completed = fallback == .closed || fallback == .open || retried
        let (classified, summary) = ProbeReport.classify(outcomes, confirmWithData: configuration.confirmWithData)
        let answered = outcomes.filter { $0.finalReply != nil }
        let verdict: ProbeVerdict
        let detail: String
        if completed || classified == .open || classified == .openUnconfirmed {
            verdict = classified
            detail = completed || why.isEmpty ? summary : "\(summary); then \(why)"
        } else if fallback != .noSMTP, !answered.isEmpty, answered.allSatisfy(\.refused) {
            verdict = .closed
            detail = "refused all \(answered.count) tests it answered of \(outcomes.count); then \(why)"
        } else {
            verdict = fallback
            detail = why
        }
        state = .finished
        let report = ProbeReport(verdict: verdict, outcomes: outcomes, banner: banner, hostname: hostname, detail: detail)
        return close ? [.close, .finish(report)] : [.finish(report)]
    }

    /// A 452 that names recipients as what there are too many of, not storage.
    private static func limitsRecipients(_ response: SMTPResponse) -> Bool {
        response.lines.joined(separator: " ").lowercased().contains("recipients")
    }

    /// An EHLO reply's lines after the first are extension keywords, each
    /// with its parameters (RFC 5321, 4.1.1.1); keywords are case-insensitive.
    private static func offersPipelining(_ response: SMTPResponse) -> Bool {
        response.lines.dropFirst().contains { firstWord($0)?.uppercased() == "PIPELINING" }
    }

    private static func firstWord(_ text: String) -> String? {
        text.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    private static func looksLikeHostname(_ text: String) -> Bool {
        text.contains(".") && text.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }
    }
}

/// What a running test reports as it goes, for a terminal's progress line.
public enum ProbeProgress: Sendable, Equatable {
    /// Test `index` (from 0) of `total` has its answer.
    case testSettled(index: Int, total: Int, outcome: TestOutcome)
    /// The server ended the session; the remaining tests follow on a new connection after `after`.
    case reconnecting(after: Duration, why: String)
}
