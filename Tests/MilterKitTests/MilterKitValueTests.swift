import MilterKit
import MilterSocket
import Testing

struct SocketSpecTests {
    @Test(arguments: [
        ("unix:/run/relay-milter/sock", SocketSpec.unix(path: "/run/relay-milter/sock")),
        ("local:/tmp/x", .unix(path: "/tmp/x")),
        ("inet:10025@127.0.0.1", .inet(port: 10025, host: "127.0.0.1")),
        // libmilter would listen on every address; here no host is loopback.
        ("inet:10025", .inet(port: 10025, host: "127.0.0.1")),
        ("inet6:10025", .inet6(port: 10025, host: "::1")),
        ("inet6:10025@::1", .inet6(port: 10025, host: "::1")),
    ])
    func parses(text: String, spec: SocketSpec) throws {
        #expect(try SocketSpec(parsing: text) == spec)
        #expect(spec.isLoopbackOnly)
    }

    @Test(arguments: [("inet:10025@127.0.0.2", true), ("inet:10025@localhost", true), ("inet6:10025@0:0:0:0:0:0:0:1", true),
                      ("inet:10025@0.0.0.0", false), ("inet:10025@192.0.2.5", false), ("inet:10025@mx.example", false),
                      ("inet:10025@128.0.0.1", false), ("inet6:10025@::", false), ("inet6:10025@::ffff:127.0.0.1", false),
                      ("inet6:10025@2001:db8::1", false)])
    func loopbackOnly(text: String, loopback: Bool) throws {
        #expect(try SocketSpec(parsing: text).isLoopbackOnly == loopback)
    }

    @Test(arguments: ["unix:relative", "inet:0@127.0.0.1", "inet:99999@x", "tcp:25@x", "/tmp/sock", "inet:@127.0.0.1"])
    func refuses(text: String) {
        #expect(throws: SocketSpec.ParseError.malformed(text)) { try SocketSpec(parsing: text) }
    }
}

struct SMTPReplyTests {
    @Test func escapesPercentAndControlCharacters() {
        let reply = SMTPReply(code: "550", enhancedCode: "5.7.1", lines: ["<a%b@x>\r\nRSET\u{0}"])
        #expect(reply.lines == ["<a%%b@x>??RSET?"])
    }

    @Test func leavesAPlainLineAsItIs() {
        let line = "Relay access denied for <leser@bücher.example>"
        #expect(SMTPReply(code: "550", enhancedCode: "5.7.1", lines: [line]).lines == [line])
        #expect(SMTPReply(code: "550", enhancedCode: "5.7.1", lines: ["50% off\u{7F}"]).lines == ["50%% off?"])
    }

    @Test func boundsLines() {
        let reply = SMTPReply(code: "451", enhancedCode: "4.7.1", lines: Array(repeating: "x", count: 40))
        #expect(reply.lines.count == SMTPReply.maxLines)
        #expect(SMTPReply(code: "550", enhancedCode: "5.7.1", lines: []).lines == [""])
        #expect(SMTPReply(code: "550", enhancedCode: "5.7.1", lines: [String(repeating: "y", count: 5000)]).lines[0].count == 900)
    }

    @Test func macrosTreatEmptyAsAbsent() {
        let macros = Macros(["{auth_authen}": "", "i": "ABC"])
        #expect(macros["{auth_authen}"] == nil)
        #expect(macros["i"] == "ABC")
        #expect(macros["{rcpt_mailer}"] == nil)
    }
}
