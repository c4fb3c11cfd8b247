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

    static func socketLines(_ socket: SocketSpec, group: String?) -> [String] {
        switch socket {
        case .inet(let port, let host):
            let target = host == "0.0.0.0" || host.isEmpty ? "127.0.0.1" : host
            return ["smtpd_milters = inet:\(target):\(port)"]
        case .inet6(let port, let host):
            let target = host == "::" || host.isEmpty ? "::1" : host
            return ["smtpd_milters = inet:[\(target)]:\(port)"]
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
                    + access + ["smtpd_milters = unix:\(path.dropFirst(queueDirectory.count))"]
            }
            return [
                "# A chrooted smtpd (Debian's default: \"y\" in master.cf's chroot column) cannot",
                "# reach this path: put the socket under \(queueDirectory) or use inet: on loopback.",
            ] + access + ["smtpd_milters = unix:\(path)"]
        }
    }
}
