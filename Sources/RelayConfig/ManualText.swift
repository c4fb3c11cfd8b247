/// The parts of relay-milter(8) that are not about arguments: the config
/// keys, logging, examples, signals, files and exit codes. The argument parser puts this text
/// in `--help` and in the man page the package build generates from it.
/// The key list is made from the schema, so it names every key
/// `check-config` prints.
public enum ManualText {
    /// `  [milter]       socket, socket_mode, ... (where the MTA connects)`, a line per table.
    static var keyList: String {
        ConfigSchema.sections.map { section, doc in
            let header = "  [\(section)]"
            let names = ConfigSchema.keys.filter { $0.section == section }.map(\.name).joined(separator: ", ")
            return header + String(repeating: " ", count: max(1, 17 - header.count)) + names + " (\(doc))"
        }.joined(separator: "\n")
    }

    public static let discussion = """
        relay-milter refuses to relay mail unless the client is trusted (a \
        trusted network, or SASL-authenticated) or the recipient is local as \
        the MTA routes it, and tests connecting hosts for open relaying in the \
        background (SMTP commands only, never a message), refusing or tagging \
        mail from hosts found open.

        CONFIGURATION
        /etc/relay-milter/relay-milter.toml (TOML). `relay-milter check-config` \
        validates it and prints every key with its effective value; the \
        annotated sample explains each.
        \(keyList)

        LOGGING
          One line per event on standard error, logfmt (ts=, level=, msg=, \
        then fields); under the package's unit: journalctl -u relay-milter. \
        Each recipient decided is a `relay decision` line, at info when \
        allowed and notice when refused; decision.would= shows what log-only \
        or tag-only held back. Warnings about the config come at start and \
        at each reload.

        EXAMPLES
          relay-milter check-config --strict
              Check the config; fail on its warnings too (placeholders left).
          relay-milter decide --client 203.0.113.9 --from '<a@b.example>' \
        --rcpt '<c@d.example>'
              What the configured policy would do with that transaction.
          relay-milter probe HOST
              Test one host of yours now, and print the evidence.
          relay-milter cache show 192.0.2.25
              What is known of a host: verdict, when, the server's replies.
          relay-milter cache set 192.0.2.25 closed --ttl 30d
              Clear a listing by hand (then SIGHUP the daemon).
          relay-milter stats --since 24h
              Refusals and decisions over the last day, from the daemon.

        SIGNALS
          HUP    read the config again (parsed in a child first; a bad file is \
        logged and the running config kept) and the verdict database
          TERM, INT    stop: new sessions are deferred, open ones finish \
        (up to [service] shutdown_timeout), then exit 0

        FILES
          /etc/relay-milter/relay-milter.toml    the config
          /var/lib/relay-milter/verdicts.sqlite    verdicts and statistics ([cache] path)
          /run/relay-milter/    a unix socket, when [milter] socket names one there

        EXIT STATUS
          0 stopped on request; 1 libmilter failed; 71 the socket, privileges \
        or the like could not be set up; 78 the config is wrong (file:line and \
        reason on stderr).

        ATTACHING
          Postfix: `relay-milter postfix-snippet` prints the main.cf lines. \
        Sendmail: see /usr/share/doc/relay-milter/sendmail/relay-milter.m4.
        """
}
