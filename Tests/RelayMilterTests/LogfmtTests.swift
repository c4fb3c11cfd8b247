import Logging
@testable import RelayMilter
import Testing

struct LogfmtTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("", "\"\""),
        ("two words", "\"two words\""),
        ("a=b", "\"a=b\""),
        ("say \"hi\"", "\"say \\\"hi\\\"\""),
        ("line\nbreak", "\"line\\nbreak\""),
        ("bell\u{7}", "\"bell\\x7\""),
        ("<a%b@example.test>", "<a%b@example.test>"),
    ])
    func quotesWhatWouldSplitAField(raw: String, logged: String) {
        #expect(LogfmtHandler.quoted(raw) == logged)
    }

    @Test func fieldsAreSortedByKeyAndTheEventsOwnWinOverTheSessions() {
        var handler = LogfmtHandler(label: "test", level: .info)
        handler[metadataKey: "client.address"] = "192.0.2.1"
        handler[metadataKey: "mta.daemon"] = "smtpd"
        handler[metadataKey: "client.helo"] = "two words"
        let event = LogEvent(level: .notice, message: "relay decision", error: nil,
                             metadata: ["mail.rcpt": "<a@example.net>", "client.address": "192.0.2.99", "decision.verdict": "deny"],
                             source: nil, file: #fileID, function: #function, line: #line)
        let line = String(decoding: handler.line(for: event), as: UTF8.self)
        let expected = #"level=notice msg="relay decision" client.address=192.0.2.99 client.helo="two words" "#
            + #"decision.verdict=deny mail.rcpt=<a@example.net> mta.daemon=smtpd"#
        #expect(line.hasPrefix("ts="))
        #expect(line.split(separator: " ", maxSplits: 1).last.map(String.init) == expected)
    }

    @Test func truncatesUntrustedText() {
        let long = String(repeating: "x", count: 1000)
        #expect(truncatedForLog(long) == String(repeating: "x", count: 256) + "...(1000 bytes)")
        #expect(truncatedForLog("short") == "short")
    }

    @Test func timestampIsUTCWithMilliseconds() {
        let stamp = LogfmtHandler.timestamp()
        #expect(stamp.count == 24)
        #expect(stamp.hasSuffix("Z"))
        #expect(stamp.dropFirst(10).first == "T")
    }
}
