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
