import Foundation

/// The one message a registered test relays: fixed, small, labelled, with no
/// user content. It names relay-milter, the host tested and the admin who
/// answers for it, and it goes back to that admin's own alias.
public struct RegisteredTestMessage: Sendable, Equatable {
    /// The admin's address: the envelope sender and From.
    public let contact: String
    public let alias: RegisteredAlias
    /// The host tested, as an address (`192.0.2.7`, `2001:db8::7`).
    public let host: String
    public let date: Date

    public init(contact: String, alias: RegisteredAlias, host: String, date: Date) {
        self.contact = contact
        self.alias = alias
        self.host = host
        self.date = date
    }

    /// The header field that names the test, which the daemon reads on arrival.
    public static let testHeader = "X-Relay-Milter-Test"

    /// The message as lines, without line ends or dot-stuffing (the state
    /// machine does both). Every value in it comes from parsed config and an
    /// IP address: no line break can get in.
    public var lines: [String] {
        [
            "From: relay-milter <\(contact)>",
            "To: <\(alias)>",
            "Subject: relay-milter registered relay test of \(host)",
            "Date: \(Self.rfc5322(date))",
            "Message-ID: <\(alias.token)@\(alias.domain)>",
            "\(Self.testHeader): token=\(alias.token); host=\(host)",
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=us-ascii",
            "",
            "This message tests whether the mail server \(host) relays mail for",
            "clients outside its own networks. relay-milter sent it through that",
            "server at the request of \(contact), who answers for it,",
            "addressed back to a one-time address of theirs.",
            "",
            "If it reached you anywhere else, please tell \(contact).",
        ]
    }

    /// `Mon, 07 Dec 2026 18:40:00 +0000`.
    static func rfc5322(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
