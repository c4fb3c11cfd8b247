import Foundation
@testable import RelayProbe
import Testing

/// The sending half of a registered test: one message to one alias, and
/// what each kind of host makes of it.
struct RegisteredDeliveryTests {
    static let alias = RegisteredAlias(prefix: "relay-check", token: "abcdefghijklmnopqrstuvwxyz", domain: "example.org")
    static let message = RegisteredTestMessage(contact: "postmaster@example.org", alias: alias, host: "192.0.2.7",
                                               date: Date(timeIntervalSince1970: 1_800_000_000))

    /// Runs the machine against a server that answers each command (or the
    /// message, as "<message>") with one reply line; returns what was sent and the report.
    static func converse(_ answer: (String) -> String, banner: String = "220 mx.tested.example ESMTP") -> (sent: [String], report: RegisteredDeliveryReport?) {
        var machine = RegisteredDeliveryStateMachine(message: message, heloName: "checker.example.org")
        var sent: [String] = []
        var pending = machine.handle(.connected) + machine.handle(.line(banner))
        var inMessage = false
        while !pending.isEmpty {
            var replies: [String] = []
            for action in pending {
                switch action {
                case .send(let line):
                    sent.append(line)
                    if inMessage {
                        if line == "." { inMessage = false; replies.append(answer("<message>")) }
                    } else {
                        let reply = answer(line)
                        if line == "DATA", reply.hasPrefix("354") { inMessage = true }
                        if line != "QUIT" { replies.append(reply) }
                    }
                case .close:
                    break
                case .finish(let report):
                    return (sent, report)
                }
            }
            pending = replies.flatMap { machine.handle(.line($0)) }
        }
        return (sent, nil)
    }

    static func openRelay(_ line: String) -> String {
        switch line {
        case "DATA": "354 End data with <CR><LF>.<CR><LF>"
        case "<message>": "250 2.0.0 Ok: queued as 4ABC123"
        default: "250 Ok"
        }
    }

    @Test func anOpenRelayTakesTheOneMessageToTheOneAlias() throws {
        let (sent, report) = Self.converse(Self.openRelay)
        #expect(try #require(report).outcome == .accepted)
        #expect(report?.reply?.firstText == "2.0.0 Ok: queued as 4ABC123")
        #expect(Array(sent.prefix(4)) == ["EHLO checker.example.org", "MAIL FROM:<postmaster@example.org>",
                                          "RCPT TO:<relay-check+abcdefghijklmnopqrstuvwxyz@example.org>", "DATA"])
        #expect(sent.filter { $0.hasPrefix("RCPT") }.count == 1 && sent.filter { $0 == "DATA" }.count == 1)
        #expect(Array(sent.suffix(2)) == [".", "QUIT"])
        let body = sent.dropFirst(4).dropLast(2)
        #expect(Array(body) == Self.message.lines)
        #expect(body.contains("X-Relay-Milter-Test: token=abcdefghijklmnopqrstuvwxyz; host=192.0.2.7"))
        #expect(body.contains("Date: Fri, 15 Jan 2027 08:00:00 +0000"))
        #expect(report?.banner == "mx.tested.example ESMTP" && report?.transcript.contains("> QUIT") == true)
    }

    @Test(arguments: [
        ("RCPT", "554 5.7.1 Relay access denied", RegisteredDeliveryReport.Outcome.refused(.rcpt)),
        ("RCPT", "454 4.7.1 Relay access denied", .deferred(.rcpt)),
        ("MAIL", "550 5.1.0 Sender rejected", .refused(.mail)),
        ("DATA", "554 5.5.1 No valid recipients", .refused(.data)),
        ("<message>", "550 5.7.1 Message refused", .refused(.message)),
        ("EHLO", "421 4.7.0 Too busy", .deferred(.greeting)),
    ])
    func aRefusalEndsItWithNothingMoreSent(at command: String, reply: String, outcome: RegisteredDeliveryReport.Outcome) throws {
        let (sent, report) = Self.converse { line in line.hasPrefix(command) ? reply : Self.openRelay(line) }
        #expect(try #require(report).outcome == outcome)
        #expect(report?.reply?.code == Int(reply.prefix(3)))
        // Nothing after the refused step: no second recipient, no message after a refused DATA.
        let refused = command == "<message>" ? "." : sent.first { $0.hasPrefix(command) }
        #expect(sent.last == refused, "\(sent)")
    }

    @Test func aHostThatRefusesEHLOGetsHELO() throws {
        let (sent, report) = Self.converse { line in line.hasPrefix("EHLO") ? "502 5.5.2 Error: command not recognized" : Self.openRelay(line) }
        #expect(try #require(report).outcome == .accepted)
        #expect(Array(sent.prefix(2)) == ["EHLO checker.example.org", "HELO checker.example.org"])
    }

    @Test func aBannerOtherThan220EndsIt() throws {
        #expect(try #require(Self.converse(Self.openRelay, banner: "554 5.7.1 No SMTP service here").report).outcome == .refused(.banner))
        let notSMTP = try #require(Self.converse(Self.openRelay, banner: "SSH-2.0-OpenSSH_9.2").report)
        guard case .failed(let why) = notSMTP.outcome else { Issue.record("\(notSMTP.outcome)"); return }
        #expect(why.contains("not SMTP"))
    }

    @Test func aLineStartingWithADotIsStuffed() {
        var machine = RegisteredDeliveryStateMachine(message: Self.message, heloName: "h")
        _ = machine.handle(.connected)
        for line in ["220 x", "250 x", "250 x", "250 x"] { _ = machine.handle(.line(line)) }
        let sent = machine.handle(.line("354 go")).compactMap { if case .send(let line) = $0 { line } else { nil } }
        // The fixed message has no such line; each that did would be sent doubled.
        #expect(sent.last == "." && sent.dropLast().allSatisfy { !$0.hasPrefix(".") || $0.hasPrefix("..") })
    }

    @Test func hangUpsAndTimeoutsAreFailuresThatNameTheStep() {
        var machine = RegisteredDeliveryStateMachine(message: Self.message, heloName: "h")
        _ = machine.handle(.connected)
        _ = machine.handle(.line("220 x"))
        _ = machine.handle(.line("250 x"))
        let actions = machine.handle(.peerClosed)
        #expect(actions.last == .finish(RegisteredDeliveryReport(outcome: .failed("the host closed the connection at MAIL"), reply: nil,
                                                                  banner: "x", transcript: ["< 220 x", "> EHLO h", "< 250 x", "> MAIL FROM:<postmaster@example.org>"])))
        #expect(machine.handle(.timedOut).isEmpty && machine.isFinished)
    }

    @Test func aliasesParseOnlyInTheirExactShape() {
        var random = SystemRandomNumberGenerator()
        let made = RegisteredAlias.make(prefix: "relay-check", domain: "example.org", using: &random)
        #expect(made.token.count == 26 && made.token.allSatisfy { "abcdefghijklmnopqrstuvwxyz234567".contains($0) })
        #expect(RegisteredAlias.token(in: made.description, prefix: "relay-check", domain: "example.org") == made.token)
        #expect(RegisteredAlias.token(in: made.description.uppercased(), prefix: "relay-check", domain: "example.org") == made.token)
        let other = RegisteredAlias.make(prefix: "relay-check", domain: "example.org", using: &random)
        #expect(other.token != made.token)
        for recipient in ["relay-check+short@example.org", "relay-check+\(made.token)@example.org.evil.example",
                          "relay-check+\(made.token)x@example.org", "relay-check+\(made.token.dropLast())1@example.org",
                          "other+\(made.token)@example.org", "relay-check+\(made.token)%x@example.org",
                          "relay-check+\(made.token.dropLast())!@example.org"] {
            #expect(RegisteredAlias.token(in: recipient, prefix: "relay-check", domain: "example.org") == nil, "\(recipient)")
        }
    }
}
