@testable import RelayProbe
import Testing

/// Servers as the public testers meet them, each reduced to how it answers.
struct ProbeStateMachineTests {
    static func closedRelay(_ command: String, _: Int) -> ScriptedServer.Answer {
        if command.hasPrefix("EHLO") { return .reply(["250-mx.target.example", "250-PIPELINING", "250 8BITMIME"]) }
        if command.hasPrefix("MAIL") { return .reply(["250 2.1.0 Ok"]) }
        if command.hasPrefix("RCPT") { return .reply(["554 5.7.1 Relay access denied"]) }
        if command == "QUIT" { return .reply(["221 Bye"]) }
        return .reply(["250 Ok"])
    }

    static func openRelay(_ command: String, _: Int) -> ScriptedServer.Answer {
        if command == "DATA" { return .reply(["354 End data with <CR><LF>.<CR><LF>"]) }
        if command.hasPrefix("RCPT") { return .reply(["250 2.1.5 Ok"]) }
        return closedRelay(command, 0)
    }

    @Test func closedServerRefusesAllTwentyOnOneConnection() throws {
        let transcript = ScriptedServer(answer: Self.closedRelay).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .closed)
        #expect(report.outcomes.count == 20)
        #expect(report.outcomes.allSatisfy { $0.mailReply == 250 && $0.rcptReply == 554 && $0.dataReply == nil })
        #expect(transcript.connections.count == 1)
        let commands = transcript.connections[0]
        #expect(commands.first == "EHLO prober.example")
        #expect(commands.last == "QUIT")
        #expect(commands.filter { $0 == "RSET" }.count == 20)
        #expect(report.hostname == "mx.target.example")
        #expect(report.banner == "mx.target.example ESMTP")
        #expect(commands.contains("RCPT TO:<relaytest%relay-test.example@mx.target.example>"))
        #expect(commands.contains("RCPT TO:<@[192.0.2.25]:relaytest@relay-test.example>"))
        // Each test reported as it got its answer, in order, for a progress line.
        let settled = transcript.progress.compactMap { step -> Int? in
            if case .testSettled(let index, 20, let outcome) = step, outcome.rcptReply == 554 { return index }
            return nil
        }
        #expect(settled == Array(0..<20))
    }

    @Test func openRelayIsConfirmedAtDataAndNothingIsSentAfter354() throws {
        let transcript = ScriptedServer(answer: Self.openRelay).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .open)
        #expect(report.acceptedTests.count == 20)
        #expect(transcript.closedAfter354)
        // One DATA, answered 354, ends the first connection; the rest run on a second, without DATA.
        #expect(transcript.connections.count == 2)
        #expect(transcript.connections[0].last == "DATA")
        #expect(transcript.pauses == [.zero], "we closed that connection ourselves: no reason to wait")
        #expect(!transcript.connections[1].contains("DATA"))
        #expect(transcript.connections[1].last == "QUIT")
        #expect(report.outcomes[0].dataReply == 354)
    }

    @Test func acceptingRcptButRefusingDataIsNotARelay() throws {
        let transcript = ScriptedServer(answer: { command, _ in
            if command == "DATA" { return .reply(["554 5.7.1 Data refused"]) }
            return Self.openRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .rcptOnly)
        #expect(report.outcomes.allSatisfy { $0.rcptAccepted && $0.dataReply == 554 })
    }

    @Test func withoutDataCheckAnAcceptedRcptIsUnconfirmed() throws {
        var configuration = ScriptedServer.configuration
        configuration.confirmWithData = false
        let transcript = ScriptedServer(answer: Self.openRelay).run(configuration: configuration)
        #expect(transcript.report?.verdict == .openUnconfirmed)
        #expect(!transcript.connections.joined().contains("DATA"))
    }

    @Test func authenticationRequired() {
        let transcript = ScriptedServer(answer: { command, _ in
            if command.hasPrefix("MAIL") { return .reply(["530 5.7.0 Authentication required"]) }
            return Self.closedRelay(command, 0)
        }).run()
        #expect(transcript.report?.verdict == .authRequired)
    }

    @Test func ehloRefusedFallsBackToHelo() {
        let transcript = ScriptedServer(answer: { command, _ in
            if command.hasPrefix("EHLO") { return .reply(["502 5.5.2 Error: command not recognized"]) }
            if command.hasPrefix("HELO") { return .reply(["250 old.target.example"]) }
            return Self.closedRelay(command, 0)
        }).run()
        #expect(transcript.report?.verdict == .closed)
        #expect(transcript.connections[0].prefix(2) == ["EHLO prober.example", "HELO prober.example"])
    }

    @Test(arguments: [
        (["421 4.3.2 Service shutting down"], ProbeVerdict.tempfail),
        (["450 busy"], .tempfail),
        (["554 5.7.1 No SMTP service here"], .noSMTP),
        (["HTTP/1.1 400 Bad Request"], .noSMTP),
        (["SSH-2.0-OpenSSH_9.2"], .noSMTP),
        (["220-first line", "220-second line", "220 mx.multi.example ESMTP"], .closed),
    ])
    func bannerShapes(lines: [String], verdict: ProbeVerdict) {
        let transcript = ScriptedServer(banner: .reply(lines), answer: Self.closedRelay).run()
        #expect(transcript.report?.verdict == verdict, "\(transcript.report?.detail ?? "")")
    }

    @Test func multiLineBannerKeepsItsFirstLine() {
        let transcript = ScriptedServer(banner: .reply(["220-mx.multi.example ESMTP", "220 welcome"]), answer: Self.closedRelay).run()
        #expect(transcript.report?.banner == "mx.multi.example ESMTP")
    }

    @Test func silenceBeforeTheBannerIsUnreachable() {
        let transcript = ScriptedServer(banner: .silence, answer: Self.closedRelay).run()
        #expect(transcript.report?.verdict == .unreachable)
    }

    @Test func refusedConnectionIsNoSMTP() {
        let transcript = ScriptedServer(answer: Self.closedRelay).run(refuse: true)
        #expect(transcript.report?.verdict == .noSMTP)
        #expect(transcript.report?.detail == "connection refused")
    }

    @Test func closedWithoutBanner() {
        let transcript = ScriptedServer(banner: .drop, answer: Self.closedRelay).run()
        #expect(transcript.report?.verdict == .noSMTP)
    }

    /// Postfix's defaults: smtpd_hard_error_limit = 20 refusals, then 421 to
    /// the next command, which is the RSET after the twentieth test.
    @Test func fourTwentyOneAfterTheLastRefusalIsTheEndOfAClosedServer() throws {
        var refusals = 0
        let transcript = ScriptedServer(answer: { command, _ in
            if refusals >= 20 { return .reply(["421 4.7.0 mx.target.example Error: too many errors"]) }
            if command.hasPrefix("RCPT") { refusals += 1 }
            return Self.closedRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .closed, "\(report.detail)")
        #expect(report.outcomes.allSatisfy { $0.refusedPermanently })
        #expect(transcript.connections.count == 1)
    }

    @Test func fourTwentyOneMidSessionResumesOnANewConnection() throws {
        // Ten refusals per session, then 421 at the next command (a lower error limit).
        var refusals = 0
        let transcript = ScriptedServer(answer: { command, connection in
            if refusals >= 10 * connection { return .reply(["421 4.7.0 Error: too many errors"]) }
            if command.hasPrefix("RCPT") { refusals += 1 }
            return Self.closedRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .closed, "\(report.detail)")
        #expect(report.outcomes.allSatisfy { $0.refusedPermanently }, "every test answered, none twice")
        #expect(transcript.connections.count == 2)
        #expect(transcript.connections[1].first == "EHLO prober.example")
    }

    @Test func aServerThatEndsEverySessionEarlyIsJudgedOnWhatItAnswered() throws {
        // Three refusals, then 421, on every connection: the reconnections run out.
        var refusals = 0
        let transcript = ScriptedServer(answer: { command, connection in
            if refusals >= 3 * connection { return .reply(["421 4.7.0 Error: too many errors"]) }
            if command.hasPrefix("RCPT") { refusals += 1 }
            return Self.closedRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(transcript.connections.count == 4)
        // Each return after a refusal waits longer than the one before.
        #expect(transcript.pauses == [.seconds(2), .seconds(4), .seconds(6)])
        #expect(transcript.progress.contains(.reconnecting(after: .seconds(4), why: "421 at RSET")))
        #expect(report.verdict == .closed, "\(report.detail)")
        #expect(report.outcomes.filter(\.refusedPermanently).count == 12)
        #expect(report.detail.hasPrefix("refused all 12 tests it answered of 20; then 421"), "\(report.detail)")
    }

    @Test func aSessionEndedBeforeAnyAnswerIsTempfail() {
        let transcript = ScriptedServer(answer: { command, _ in
            command.hasPrefix("MAIL") ? .reply(["421 4.3.2 Service shutting down"]) : Self.closedRelay(command, 0)
        }).run()
        #expect(transcript.report?.verdict == .tempfail)
    }

    /// Greylisting, rate limits, postscreen's first visit: a 4xx is no
    /// evidence, and a relay that greylists would look closed for 30 days.
    @Test func temporaryRefusalsAreNotEvidence() throws {
        let transcript = ScriptedServer(answer: { command, _ in
            command.hasPrefix("RCPT") ? .reply(["450 4.2.0 Greylisted, try again later"]) : Self.closedRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .tempfail)
        #expect(report.detail.contains("only for now"), "\(report.detail)")
        // Tried once more on a new connection, in case the refusal was the session's; no more.
        #expect(transcript.connections.count == 2)
        #expect(transcript.connections[0].suffix(1) == ["QUIT"])
        #expect(transcript.connections[1].filter { $0.hasPrefix("RCPT") }.count == 20)
    }

    /// postscreen's first visit: its own SMTP engine answers 450 until the
    /// client has passed, and the next connection reaches the real smtpd.
    @Test func testsRefusedForNowRunAgainOnANewConnection() throws {
        let transcript = ScriptedServer(answer: { command, connection in
            if connection == 1, command.hasPrefix("RCPT") { return .reply(["450 4.3.2 Service currently unavailable"]) }
            return Self.closedRelay(command, connection)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .closed, "\(report.detail)")
        #expect(report.outcomes.allSatisfy { $0.rcptReply == 554 })
        #expect(transcript.pauses == [.seconds(2)])
    }

    /// A per-connection recipient limit: 452 after five RCPTs on a connection.
    @Test func aRecipientLimitPerSessionIsNotEvidenceEither() throws {
        var rcpts = [Int: Int]()
        let transcript = ScriptedServer(answer: { command, connection in
            guard command.hasPrefix("RCPT") else { return Self.closedRelay(command, connection) }
            rcpts[connection, default: 0] += 1
            return rcpts[connection]! > 5 ? .reply(["452 4.5.3 Error: too many recipients"]) : .reply(["554 5.7.1 Relay access denied"])
        }).run()
        let report = try #require(transcript.report)
        // Five on each of four connections (the first and three reconnections).
        #expect(report.verdict == .closed, "\(report.detail)")
        #expect(report.outcomes.allSatisfy { $0.refusedPermanently })
        #expect(transcript.connections.count == 4)
        #expect(transcript.connections[0].last == "QUIT")
    }

    /// Postfix at its defaults (`defer_unauth_destination`) refuses relaying
    /// with a 4xx whose text gives the reason: a refusal, not a "later".
    @Test func aTemporaryRefusalThatNamesRelayingIsARefusal() throws {
        var refusals = 0
        let transcript = ScriptedServer(answer: { command, _ in
            if refusals >= 20 { return .reply(["421 4.7.0 mx.target.example Error: too many errors"]) }
            guard command.hasPrefix("RCPT") else { return Self.closedRelay(command, 0) }
            refusals += 1
            return .reply(["454 4.7.1 <relaytest@relay-test.example>: Relay access denied"])
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .closed, "\(report.detail)")
        #expect(report.outcomes.allSatisfy { $0.deferredAsRelay && $0.refused && !$0.refusedTemporarily })
        #expect(report.detail == "refused all 20 tests (20 with a 4xx naming relaying as the reason)")
    }

    @Test func relayDeferralsAmongGreylistingStillWaitForTheRetest() throws {
        // Some tests refused as relaying, others greylisted: those others are unknown yet.
        let transcript = ScriptedServer(answer: { command, _ in
            guard command.hasPrefix("RCPT") else { return Self.closedRelay(command, 0) }
            return command.contains("%") ? .reply(["451 4.7.1 Greylisted, please try again in 300 seconds"])
                : .reply(["454 4.7.1 Relay access denied"])
        }).run()
        #expect(transcript.report?.verdict == .tempfail)
    }

    @Test func aTarpitAfterRefusalsIsStillClosed() throws {
        // Five refusals, then no more replies: the slow closed host is not unreachable.
        var refusals = 0
        let transcript = ScriptedServer(answer: { command, _ in
            if refusals >= 5 { return .silence }
            if command.hasPrefix("RCPT") { refusals += 1 }
            return Self.closedRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .closed, "\(report.detail)")
        #expect(report.outcomes.filter(\.refusedPermanently).count == 5)
    }

    @Test func droppedConnectionIsResumedOnANewOne() throws {
        // The server hangs up on the fifth test's RCPT, once.
        let transcript = ScriptedServer(answer: { command, connection in
            if connection == 1, command == "RCPT TO:<relaytest%relay-test.example@[192.0.2.25]>" { return .drop }
            return Self.closedRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.verdict == .closed)
        #expect(transcript.connections.count == 2)
        #expect(transcript.connections[1].first == "EHLO prober.example")
        #expect(transcript.connections[1][1] == "MAIL FROM:<antispam@[192.0.2.25]>")
        #expect(report.outcomes[5].rcptReply == 554)
    }

    @Test func serverThatKeepsDroppingEndsAsError() {
        let transcript = ScriptedServer(answer: { command, _ in
            command.hasPrefix("RCPT") ? .drop : Self.closedRelay(command, 0)
        }).run()
        #expect(transcript.report?.verdict == .error)
        #expect(transcript.connections.count == 4)
    }

    @Test func garbageMidSessionIsAnError() {
        let transcript = ScriptedServer(answer: { command, _ in
            command.hasPrefix("RCPT") ? .reply(["what?"]) : Self.closedRelay(command, 0)
        }).run()
        #expect(transcript.report?.verdict == .error)
    }

    @Test func relayFoundBeforeATimeoutStillCounts() {
        var confirmed = false
        let transcript = ScriptedServer(answer: { command, _ in
            if command == "DATA" { confirmed = true; return .reply(["354 go ahead"]) }
            if confirmed, command.hasPrefix("MAIL") { return .silence }
            return Self.openRelay(command, 0)
        }).run()
        #expect(transcript.report?.verdict == .open)
    }
}

/// Where the EHLO reply offers PIPELINING, commands go out in groups; the
/// replies, and so the report, are those of a command at a time.
struct PipeliningTests {
    static var lockstep: ProbeStateMachine.Configuration {
        var configuration = ScriptedServer.configuration
        configuration.pipelining = false
        return configuration
    }

    @Test func aRefusedTestTakesOneWrite() throws {
        let transcript = ScriptedServer(answer: ProbeStateMachineTests.closedRelay).run()
        let groups = transcript.groups
        #expect(groups.first == ["EHLO prober.example"])
        #expect(groups[1] == ["MAIL FROM:<>", "RCPT TO:<relaytest@relay-test.example>"])
        #expect(groups[2] == ["RSET", "MAIL FROM:<antispam@relay-test.example>", "RCPT TO:<relaytest@relay-test.example>"])
        // EHLO, the first test, 19 tests each behind a RSET, the last RSET, QUIT.
        #expect(groups.count == 23)
        #expect(groups.suffix(2) == [["RSET"], ["QUIT"]])
        #expect(transcript.report?.verdict == .closed)
    }

    @Test func withoutTheKeywordOrWhenTurnedOffOneCommandAtATime() {
        let noKeyword = ScriptedServer(answer: { command, _ in
            command.hasPrefix("EHLO") ? .reply(["250-mx.target.example", "250 8BITMIME"]) : ProbeStateMachineTests.closedRelay(command, 0)
        }).run()
        let heloOnly = ScriptedServer(answer: { command, _ in
            // HELO offers no extensions, whatever its text says.
            if command.hasPrefix("EHLO") { return .reply(["502 5.5.2 Error: command not recognized"]) }
            if command.hasPrefix("HELO") { return .reply(["250 PIPELINING"]) }
            return ProbeStateMachineTests.closedRelay(command, 0)
        }).run()
        let turnedOff = ScriptedServer(answer: ProbeStateMachineTests.closedRelay).run(configuration: Self.lockstep)
        for transcript in [noKeyword, heloOnly, turnedOff] {
            #expect(transcript.groups.allSatisfy { $0.count == 1 })
            #expect(transcript.report?.verdict == .closed)
        }
        #expect(turnedOff.groups.count == 1 + 20 * 3 + 1)
    }

    @Test func keywordIsCaseInsensitiveButNeverTheGreetingLine() {
        let transcript = ScriptedServer(answer: { command, _ in
            command.hasPrefix("EHLO") ? .reply(["250-mx.target.example", "250 pipelining"]) : ProbeStateMachineTests.closedRelay(command, 0)
        }).run()
        #expect(transcript.groups[1].count == 2)
        // The greeting line is the server's name, not a keyword.
        let nameOnly = ScriptedServer(answer: { command, _ in
            command.hasPrefix("EHLO") ? .reply(["250 PIPELINING"]) : ProbeStateMachineTests.closedRelay(command, 0)
        }).run()
        #expect(nameOnly.groups.allSatisfy { $0.count == 1 })
    }

    /// Servers as the tests above meet them, for running each both ways.
    enum Script: String, CaseIterable, Sendable {
        case closed, open, authRequired, dropsOnce
        /// Refuses some senders and accepts some recipients, in one run.
        case mixed

        func answer(_ command: String, _ connection: Int) -> ScriptedServer.Answer {
            switch self {
            case .closed:
                return ProbeStateMachineTests.closedRelay(command, connection)
            case .open:
                return ProbeStateMachineTests.openRelay(command, connection)
            case .authRequired:
                if command.hasPrefix("MAIL") { return .reply(["530 5.7.0 Authentication required"]) }
            case .dropsOnce:
                if connection == 1, command.hasPrefix("RCPT TO:<relaytest%") { return .drop }
            case .mixed:
                if command.hasPrefix("MAIL FROM:<antispam@[") { return .reply(["553 5.1.8 Sender address rejected"]) }
                // Accepted: the plain recipient (its senders are not refused), and the
                // double-@ ones, whose senders are.
                if command == "RCPT TO:<relaytest@relay-test.example>" || command.hasPrefix("RCPT TO:<relaytest@relay-test.example@") {
                    return .reply(["250 2.1.5 Ok"])
                }
                if command == "DATA" { return .reply(["554 5.5.1 No valid recipients"]) }
            }
            return ProbeStateMachineTests.closedRelay(command, connection)
        }
    }

    @Test(arguments: Script.allCases)
    func sameReportAsOneCommandAtATime(script: Script) throws {
        let pipelined = ScriptedServer(answer: script.answer).run()
        let lockstep = ScriptedServer(answer: script.answer).run(configuration: Self.lockstep)
        let report = try #require(pipelined.report)
        #expect(report == lockstep.report)
        #expect(pipelined.groups.count < lockstep.groups.count)
        #expect(pipelined.closedAfter354)
    }

    @Test func dataGoesAloneAndNothingFollowsA354() throws {
        let transcript = ScriptedServer(answer: ProbeStateMachineTests.openRelay).run()
        #expect(transcript.report?.verdict == .open)
        #expect(transcript.closedAfter354)
        let withData = transcript.groups.filter { $0.contains("DATA") }
        #expect(withData == [["DATA"]])
        // The second connection's tests are pipelined too.
        #expect(transcript.groups.contains { $0.count == 3 })
    }

    @Test func aRcptSentWithARefusedMailIsReadAndIgnored() throws {
        let transcript = ScriptedServer(answer: { command, _ in
            if command.hasPrefix("MAIL") { return .reply(["550 5.7.1 Go away"]) }
            if command.hasPrefix("RCPT") { return .reply(["503 5.5.1 Error: need MAIL command"]) }
            return ProbeStateMachineTests.closedRelay(command, 0)
        }).run()
        let report = try #require(transcript.report)
        #expect(report.outcomes.allSatisfy { $0.mailReply == 550 && $0.rcptReply == nil })
        #expect(transcript.groups[1].count == 2)
    }
}

struct ReplyAssemblerTests {
    @Test func assemblesMultiLineReplies() {
        var assembler = ReplyAssembler()
        #expect(assembler.feed("250-mx.example") == .incomplete)
        #expect(assembler.feed("250-SIZE 1000") == .incomplete)
        #expect(assembler.feed("250 OK") == .complete(SMTPResponse(code: 250, lines: ["mx.example", "SIZE 1000", "OK"])))
        #expect(assembler.feed("221") == .complete(SMTPResponse(code: 221, lines: [""])))
    }

    @Test(arguments: ["", "25", "abc hello", "250_x", "2500 x"])
    func refusesNonReplies(line: String) {
        var assembler = ReplyAssembler()
        #expect(assembler.feed(line) == .malformed(line))
    }

    @Test func refusesChangingCodesAndEndlessContinuations() {
        var assembler = ReplyAssembler()
        _ = assembler.feed("250-a")
        #expect(assembler.feed("251 b") == .malformed("251 b"))
        var endless = ReplyAssembler()
        var last = ReplyAssembler.Output.incomplete
        for _ in 0..<ReplyAssembler.maxLines { last = endless.feed("250-more") }
        #expect(last == .malformed("250-more"))
    }
}

struct SMTPResponseTests {
    @Test(arguments: [
        "454 4.7.1 <relaytest@relay-test.example>: Relay access denied",   // Postfix
        "550 5.7.1 <relaytest@relay-test.example>... Relaying denied",     // Sendmail
        "550 relay not permitted",                                         // Exim
        "550 5.7.1 Relaying not allowed",
        "553 sorry, relaying prohibited",
        "550 5.7.1 <a@b.example>... Relaying denied. Proper authentication required.",
    ])
    func namesRelayingAsTheReason(line: String) throws {
        var assembler = ReplyAssembler()
        guard case .complete(let response) = assembler.feed(line) else { Issue.record("not a reply"); return }
        #expect(response.deniesRelaying)
    }

    @Test(arguments: [
        "450 4.2.0 <relaytest@relay-test.example>: Recipient address rejected: Greylisted, see https://postgrey.schweikert.ch/help/relay-test.example.html",
        "450 4.7.1 Greylisted: relay-denied.example tried too soon, see relay-denied.example/help",
        "450 4.3.2 Service currently unavailable",
        "452 4.5.3 Error: too many recipients",
        "250 2.1.5 Ok, relay for you",
    ])
    func otherRepliesDoNot(line: String) throws {
        var assembler = ReplyAssembler()
        guard case .complete(let response) = assembler.feed(line) else { Issue.record("not a reply"); return }
        #expect(!response.deniesRelaying)
    }
}

struct TestBatteryTests {
    @Test func twentyDistinctVariants() {
        let tests = TestBattery.tests(BatteryParameters(testDomain: "d.example"), hostname: "mx.t.example", ipLiteral: "[192.0.2.1]")
        #expect(tests.count == 20)
        #expect(Set(tests).count == 20)
        #expect(Set(tests.map(\.name)).count == 20)
        #expect(tests.allSatisfy { $0.rcptTo.contains("d.example") })
    }
}
