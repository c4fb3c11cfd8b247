import RelayConfig
import RelayPolicy

/// The relay rules' decision for one recipient and what it becomes under the
/// configured actions and mode. Shared by the milter session and `decide`, so
/// the offline explanation is the live behaviour.
public struct RecipientOutcome: Sendable, Equatable {
    public let recipient: String
    public let decision: Decision
    public let action: ResolvedAction
    /// The SMTP reply text for a reject or tempfail (also shown for what log-only would have done).
    public let replyText: String?

    /// SMTP status codes of our replies: `550 5.7.1` for a reject, `451 4.7.1` for a tempfail.
    public struct ReplyStatus: Sendable, Equatable {
        public let code: String
        public let enhancedCode: String
        public static let reject = ReplyStatus(code: "550", enhancedCode: "5.7.1")
        public static let tempfail = ReplyStatus(code: "451", enhancedCode: "4.7.1")
    }

    /// The status that goes with `replyText`.
    public var replyStatus: ReplyStatus? {
        switch action.configured {
        case .reject: .reject
        case .tempfail: .tempfail
        case .accept, .tag: nil
        }
    }

    /// The full reply line as the client would see it.
    public var replyLine: String? {
        guard let status = replyStatus, let replyText else { return nil }
        return "\(status.code) \(status.enhancedCode) \(replyText)"
    }

    /// `borrowing`: an initializer takes its arguments owned by default, and
    /// the whole config would be copied for each recipient and destroyed again.
    public init(_ transaction: RelayTransaction, config: borrowing RelayMilterConfig) {
        let decision = decide(transaction, config: config.policy)
        let action = config.rules.resolve(decision)
        recipient = transaction.recipient
        self.decision = decision
        self.action = action
        let template: String? = switch action.configured {
        case .reject: config.replies.rejectText
        case .tempfail: config.replies.tempfailText
        case .accept, .tag: nil
        }
        replyText = template.map {
            ReplyTemplate.render($0, recipient: transaction.recipient, client: transaction.clientAddress, reason: decision.reason)
        }
    }

    /// The value of the tag header for this recipient, made of parts that
    /// cannot carry a `;` or a line break: the recipient comes from the
    /// client, and a quoted local part (`"x; reason=trusted"@example.org`)
    /// could otherwise forge fields for whoever reads the header.
    public func tagValue(client: IPAddress?) -> String {
        "\(action.configured.rawValue); reason=\(decision.reason.rawValue); \(Self.recipientField(recipient)); client=\(client.map { "\($0)" } ?? "unknown")"
    }

    /// `rcpt=<user@example.org>` for an address whose local part is plain
    /// (RFC 5322 atext and dots: `%` and `!` included, so routing shows);
    /// otherwise only the domain, `rcpt_domain=example.org`, or nothing known.
    static func recipientField(_ recipient: String) -> String {
        guard let address = try? MailAddress(parsing: recipient) else { return "rcpt=unparsable" }
        let plain = !address.hadSourceRoute && address.localPart.utf8.count <= 64
            && address.localPart.utf8.allSatisfy { isAtext($0) || $0 == UInt8(ascii: ".") }
        switch (plain, address.domain) {
        case (true, let domain?): return "rcpt=<\(address.localPart)@\(domain)>"
        case (true, nil): return "rcpt=<\(address.localPart)>"
        case (false, let domain?): return "rcpt_domain=\(domain)"
        case (false, nil): return "rcpt=unparsable"
        }
    }

    private static func isAtext(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
        }
    }
}

enum ReplyTemplate {
    static func render(_ template: String, recipient: String, client: IPAddress?, reason: ReasonCode) -> String {
        Placeholders.fill(template) { name in
            switch name {
            case "recipient": bare(recipient)
            case "client": client.map { "\($0)" } ?? "unknown"
            case "reason": reason.rawValue
            default: nil
            }
        }
    }

    /// The address without its angle brackets, cut to a sane length.
    static func bare(_ address: String) -> String {
        var text = Substring(address)
        if text.hasPrefix("<") { text = text.dropFirst() }
        if text.hasSuffix(">") { text = text.dropLast() }
        return text.count > 200 ? String(text.prefix(200)) + "..." : String(text)
    }
}
