import MilterSocket

/// The `main.cf` lines that attach Postfix to relay-milter as configured
/// (`relay-milter postfix-snippet`): copy them in, then `postfix reload`.
public enum PostfixSnippet {
    /// Postfix's own queue directory on Debian: smtpd runs there, chrooted
    /// there by default.
    static let queueDirectory = "/var/spool/postfix/"

    public static func render(_ config: RelayMilterConfig, configPath: String) -> String {
        var lines = [
            "# relay-milter: add to /etc/postfix/main.cf, then run `postfix reload`.",
            "# Made from \(configPath): [milter] socket = \"\(config.milter.socket)\".",
            "# Where smtpd_milters is set already, add the socket to its list instead.",
        ]
        lines += socketLines(config.milter.socket, group: config.milter.socketGroup)
        lines += [
            "# relay-milter down or not answering: 4xx, the client retries, nothing is lost.",
            "milter_default_action = tempfail",
            "milter_protocol = 6",
            "# {client_addr} at connect; relay-milter asks for the other macros it reads itself.",
            "milter_connect_macros = j {daemon_name} {daemon_addr} v {client_addr}",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `master.cf` service of a trap listener served by the trap process
    /// `config` describes (`relay-milter postfix-snippet --trap`): Postfix
    /// relays for anyone there, relay-milter takes and discards what comes.
    public static func renderTrap(_ config: RelayMilterConfig, configPath: String, listen: String) -> String {
        let name = config.trap.daemonNames.first ?? ""
        var lines = [
            "# relay-milter trap: add to /etc/postfix/master.cf, then run `postfix reload`.",
            "# Made from \(configPath): [milter] socket = \"\(config.milter.socket)\", [trap] daemon_names = \(config.trap.daemonNames).",
            "# Give the trap an address or port of its own that no real client uses; never your MX's port 25.",
            "# Postfix relays for anyone on it: relay-milter alone keeps it from relaying, and with relay-milter",
            "# stopped milter_default_action=tempfail refuses all its mail for now. (Postfix will not start an",
            "# smtpd whose relay restrictions are a bare `permit`; static:OK lets every client past the check.)",
            "# Where main.cf's smtpd_recipient_restrictions refuses relaying too, override it here as well.",
        ]
        if case .unix(let path) = config.milter.socket, !path.hasPrefix(queueDirectory) {
            lines.append("# A chrooted smtpd cannot reach \(path): put the socket under \(queueDirectory) or use inet: on loopback.")
        }
        lines += [
            "\(listen) inet  n       -       -       -       -       smtpd",
            "  -o syslog_name=postfix/trap",
            "  -o milter_macro_daemon_name=\(name)",
            "  -o smtpd_relay_restrictions=check_client_access,static:OK,reject_unauth_destination",
            "  -o smtpd_milters=\(milterTarget(config.milter.socket))",
            "  -o milter_default_action=tempfail",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The socket as Postfix's milter settings name it.
    static func milterTarget(_ socket: SocketSpec) -> String {
        switch socket {
        case .inet(let port, let host):
            "inet:\(host == "0.0.0.0" || host.isEmpty ? "127.0.0.1" : host):\(port)"
        case .inet6(let port, let host):
            "inet:[\(host == "::" || host.isEmpty ? "::1" : host)]:\(port)"
        case .unix(let path):
            // Postfix's daemons work in the queue directory, chrooted or not,
            // so a name relative to it works either way.
            "unix:" + (path.hasPrefix(queueDirectory) ? String(path.dropFirst(queueDirectory.count)) : path)
        }
    }

    static func socketLines(_ socket: SocketSpec, group: String?) -> [String] {
        switch socket {
        case .inet, .inet6:
            return ["smtpd_milters = \(milterTarget(socket))"]
        case .unix(let path):
            // smtpd runs as the postfix user with its group postfix: the
            // socket's group (mode 0660) is what lets it in.
            let access = group.map { $0.isEmpty ? [] : ["# The socket is made with group \($0): it must be postfix's group (or smtpd cannot write it)."] }
                ?? ["# smtpd (group postfix) must be able to write the socket: socket_group = \"postfix\", or a",
                    "# directory of group postfix with the setgid bit (the package's /var/spool/postfix/relay-milter)."]
            if path.hasPrefix(queueDirectory) {
                // Postfix's daemons work in the queue directory, chrooted or
                // not, so a name relative to it works either way.
                return ["# Relative to Postfix's queue directory: right for a chrooted smtpd and for one that is not."]
                    + access + ["smtpd_milters = \(milterTarget(socket))"]
            }
            return [
                "# A chrooted smtpd (Debian's default: \"y\" in master.cf's chroot column) cannot",
                "# reach this path: put the socket under \(queueDirectory) or use inet: on loopback.",
            ] + access + ["smtpd_milters = \(milterTarget(socket))"]
        }
    }
}
