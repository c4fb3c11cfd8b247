import MilterKit
import MilterSocket
@testable import RelayMilter
@testable import RelayConfig
import Testing

struct PostfixSnippetTests {
    static func snippet(_ socket: SocketSpec, group: String? = nil) -> String {
        var config = RelayMilterConfig.defaults
        config.milter.socket = socket
        config.milter.socketGroup = group
        return PostfixSnippet.render(config, configPath: "/etc/relay-milter/relay-milter.toml")
    }

    static func setting(_ name: String, in snippet: String) -> String? {
        snippet.split(separator: "\n").first { $0.hasPrefix("\(name) = ") }.map { String($0.dropFirst(name.count + 3)) }
    }

    @Test func inetSocketsInPostfixSpelling() {
        #expect(Self.setting("smtpd_milters", in: Self.snippet(.inet(port: 10025, host: "127.0.0.1"))) == "inet:127.0.0.1:10025")
        #expect(Self.setting("smtpd_milters", in: Self.snippet(.inet(port: 10025, host: "0.0.0.0"))) == "inet:127.0.0.1:10025")
        #expect(Self.setting("smtpd_milters", in: Self.snippet(.inet6(port: 10025, host: "::1"))) == "inet:[::1]:10025")
        #expect(Self.setting("smtpd_milters", in: Self.snippet(.inet6(port: 10025, host: "::"))) == "inet:[::1]:10025")
    }

    @Test func unixSocketUnderTheQueueDirectoryIsRelativeToIt() {
        // The package's layout: no socket_group, the directory's setgid group.
        let text = Self.snippet(.unix(path: "/var/spool/postfix/relay-milter/relay-milter.sock"))
        #expect(Self.setting("smtpd_milters", in: text) == "unix:relay-milter/relay-milter.sock")
        #expect(text.contains("the package's /var/spool/postfix/relay-milter"))
    }

    @Test func unixSocketElsewhereWarnsAboutTheChroot() {
        let text = Self.snippet(.unix(path: "/run/relay-milter/relay-milter.sock"), group: "postfix")
        #expect(Self.setting("smtpd_milters", in: text) == "unix:/run/relay-milter/relay-milter.sock")
        #expect(text.contains("A chrooted smtpd"))
        #expect(text.contains("The socket is made with group postfix"))
    }

    /// The trap's service: its own daemon name, relaying left to relay-milter,
    /// and tempfail when relay-milter is down, so it never becomes a real relay.
    @Test func trapServiceIsNamedAndFailsSafe() {
        var config = RelayMilterConfig.defaults
        config.trap.enabled = true
        config.milter.socket = .unix(path: "/var/spool/postfix/relay-milter/trap.sock")
        let text = PostfixSnippet.renderTrap(config, configPath: "/etc/relay-milter/trap.toml", listen: "192.0.2.25:25")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("192.0.2.25:25 inet  n       -       -       -       -       smtpd"))
        #expect(lines.contains("  -o milter_macro_daemon_name=relay-milter-trap"))
        #expect(lines.contains("  -o smtpd_milters=unix:relay-milter/trap.sock"))
        #expect(lines.contains("  -o milter_default_action=tempfail"))
        #expect(lines.contains("  -o smtpd_relay_restrictions=check_client_access,static:OK,reject_unauth_destination"))
    }

    @Test func failsSafeWhenTheMilterIsDown() {
        let text = Self.snippet(.inet(port: 10025, host: "127.0.0.1"))
        #expect(Self.setting("milter_default_action", in: text) == "tempfail")
        #expect(Self.setting("milter_protocol", in: text) == "6")
        #expect(Self.setting("milter_connect_macros", in: text)?.contains("{client_addr}") == true)
        // Every line is a comment or a main.cf setting.
        for line in text.split(separator: "\n") {
            #expect(line.hasPrefix("#") || line.contains(" = "), "\(line)")
        }
    }
}
