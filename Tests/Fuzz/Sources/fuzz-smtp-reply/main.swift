import CLibFuzzer
import Foundation
import Glibc
import RelayProbe

/// Any bytes as what a tested host says. The input is split into lines, each
/// fed to the open-relay test state machine as a reply line; a line of a single
/// control byte stands for an event instead (\u{1} the peer closed, \u{3} a
/// timeout, \u{4} right after a reconnect request: the new connection is
/// refused). The harness plays the driver: a reconnect request is answered with
/// a new connection. The machine must never crash, never send anything but SMTP
/// commands, never group DATA or QUIT with another command (the sends of one
/// event are one pipelined write), and never send a byte on a connection after
/// the server said 354 to DATA (no message content, ever).
/// The same lines then drive a registered test's sending half: it must send
/// at most one RCPT, one DATA and one message, the message only after a 354
/// to that DATA, and nothing after its end but QUIT.
/// Static, so initialised on first use: libFuzzer's runtime may bring its own
/// main, and then main.swift's top-level code (and its globals) never runs.
enum Fixture {
    static let configuration = ProbeStateMachine.Configuration(
        battery: BatteryParameters(testDomain: "relay-test.example"), heloName: "probe.example",
        ipLiteral: "[192.0.2.1]"
    )
    static let commands = ["EHLO ", "HELO ", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "QUIT"]
    static let message = RegisteredTestMessage(
        contact: "postmaster@example.org",
        alias: RegisteredAlias(prefix: "relay-check", token: "abcdefghijklmnopqrstuvwxyz", domain: "example.org"),
        host: "192.0.2.1", date: Date(timeIntervalSince1970: 1_800_000_000)
    )
}

// Also under libFuzzer's own name: its runtime's main (linked in with it) refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPReply(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0.prefix(2048)) }

    // The reply assembler alone.
    var assembler = ReplyAssembler()
    for line in lines {
        if case .complete(let reply) = assembler.feed(line) {
            precondition((0...999).contains(reply.code) && !reply.lines.isEmpty)
        }
    }

    var machine = ProbeStateMachine(configuration: Fixture.configuration)
    var lastSent = ""
    var dataAccepted = false // 354 seen on this connection: nothing more may be sent on it
    var reconnectRequested = false
    var finished = false
    func apply(_ actions: [ProbeStateMachine.Action]) {
        let group = actions.compactMap { action -> String? in
            if case .send(let command) = action { return command }
            return nil
        }
        precondition(group.count == 1 || !group.contains { $0 == "DATA" || $0 == "QUIT" }, "DATA or QUIT pipelined: \(group)")
        for action in actions {
            precondition(!finished, "action after finish")
            switch action {
            case .send(let command):
                precondition(!dataAccepted, "sent \"\(command)\" after 354")
                precondition(Fixture.commands.contains { command.hasPrefix($0) }, "not an SMTP command: \(command)")
                precondition(!command.contains("\r") && !command.contains("\n"), "line break in \(command)")
                lastSent = command
            case .close, .progress:
                break
            case .reconnect(let pause):
                precondition(pause >= .zero && pause <= .seconds(60), "pause of \(pause)")
                reconnectRequested = true
            case .finish:
                finished = true
            }
        }
    }
    apply(machine.handle(.connected))
    for line in lines {
        if machine.isFinished { break }
        if reconnectRequested {
            reconnectRequested = false
            dataAccepted = false
            lastSent = ""
            if line == "\u{4}" {
                apply(machine.handle(.connectFailed(.refused)))
                continue
            }
            apply(machine.handle(.connected))
        }
        switch line {
        case "\u{1}": apply(machine.handle(.peerClosed))
        case "\u{3}": apply(machine.handle(.timedOut))
        default:
            if lastSent == "DATA", line.hasPrefix("354 ") || line == "354" { dataAccepted = true }
            apply(machine.handle(.line(line)))
        }
    }
    checkRegisteredDelivery(lines)
    return 0
}

func checkRegisteredDelivery(_ lines: [String]) {
    var machine = RegisteredDeliveryStateMachine(message: Fixture.message, heloName: "checker.example.org")
    var sent: [String] = []
    var lastCommand = ""
    var inMessage = false
    var messageEnded = false
    func apply(_ actions: [RegisteredDeliveryStateMachine.Action]) {
        for case .send(let line) in actions {
            precondition(!line.contains("\r") && !line.contains("\n"), "line break in \(line)")
            if inMessage {
                if line == "." { inMessage = false; messageEnded = true }
            } else {
                precondition(!messageEnded || line == "QUIT", "\"\(line)\" after the message")
                precondition(Fixture.commands.contains { line.hasPrefix($0) }, "not an SMTP command: \(line)")
                lastCommand = line
            }
            sent.append(line)
        }
    }
    apply(machine.handle(.connected))
    for line in lines where !machine.isFinished {
        switch line {
        case "\u{1}": apply(machine.handle(.peerClosed))
        case "\u{3}": apply(machine.handle(.timedOut))
        default:
            let opensMessage = lastCommand == "DATA" && !inMessage && !messageEnded
            let actions = machine.handle(.line(line))
            // The message goes out in the same write as the reaction to DATA's reply, and only to a 354.
            let sendsText = actions.contains { if case .send(let text) = $0 { !Fixture.commands.contains { text.hasPrefix($0) } } else { false } }
            precondition(!sendsText || (opensMessage && (line.hasPrefix("354 ") || line == "354")), "message text without a 354: \(line)")
            if sendsText { inMessage = true }
            apply(actions)
        }
    }
    precondition(sent.filter { $0.hasPrefix("RCPT TO:") }.count <= 1, "more than one RCPT")
    precondition(sent.filter { $0 == "DATA" }.count <= 1, "more than one DATA")
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzSMTPReply))
