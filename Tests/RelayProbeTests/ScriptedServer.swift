@testable import RelayProbe

/// Drives a `ProbeStateMachine` against a scripted server, with no sockets.
/// The script answers each command; it can also drop the connection.
struct ScriptedServer {
    enum Answer {
        case reply([String])
        case drop
        case silence
    }

    var banner: Answer = .reply(["220 mx.target.example ESMTP"])
    var answer: (_ command: String, _ connection: Int) -> Answer

    /// Every command the prober sent, per connection, and the report.
    struct Transcript {
        var connections: [[String]] = []
        /// The commands of each write: those of one event, sent before any reply is read.
        var groups: [[String]] = []
        var closedAfter354 = true
        /// The wait asked for before each new connection.
        var pauses: [Duration] = []
        var progress: [ProbeProgress] = []
        var report: ProbeReport?
    }

    static let configuration = ProbeStateMachine.Configuration(
        battery: BatteryParameters(testDomain: "relay-test.example"),
        heloName: "prober.example", confirmWithData: true, ipLiteral: "[192.0.2.25]"
    )

    /// As a network would: the commands of one batch of actions are all sent
    /// before the first of their replies arrives, and a dropped connection
    /// or a silence swallows the replies still due on it.
    func run(configuration: ProbeStateMachine.Configuration = Self.configuration, refuse: Bool = false) -> Transcript {
        var machine = ProbeStateMachine(configuration: configuration)
        var transcript = Transcript()
        var pending: [ProbeStateMachine.Action] = []
        var connection = 0

        func connect() {
            if refuse {
                pending += machine.handle(.connectFailed(.refused))
                return
            }
            connection += 1
            transcript.connections.append([])
            pending += machine.handle(.connected)
            deliver(banner)
        }
        func deliver(_ answer: Answer) {
            switch answer {
            case .reply(let lines): for line in lines { pending += machine.handle(.line(line)) }
            case .drop: pending += machine.handle(.peerClosed)
            case .silence: pending += machine.handle(.timedOut)
            }
        }

        connect()
        var steps = 0
        var sawData354 = false
        while !pending.isEmpty, steps < 1000 {
            steps += 1
            let batch = pending
            pending = []
            var due: [(command: String, answer: Answer)] = []
            var group: [String] = []
            for action in batch {
                switch action {
                case .send(let command):
                    if sawData354 { transcript.closedAfter354 = false }
                    transcript.connections[connection - 1].append(command)
                    group.append(command)
                    due.append((command, self.answer(command, connection)))
                case .close:
                    sawData354 = false
                    due = []
                case .reconnect(let pause):
                    transcript.pauses.append(pause)
                    due = []
                    connect()
                case .progress(let step):
                    transcript.progress.append(step)
                case .finish(let report):
                    transcript.report = report
                }
            }
            if !group.isEmpty { transcript.groups.append(group) }
            for (command, answer) in due {
                if command == "DATA", case .reply(let lines) = answer, lines.last?.hasPrefix("354") == true { sawData354 = true }
                deliver(answer)
                // After a drop or a silence no further reply arrives on this connection.
                if case .reply = answer { continue }
                break
            }
        }
        return transcript
    }
}
