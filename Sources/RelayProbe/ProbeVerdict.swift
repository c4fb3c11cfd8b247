/// The outcome of testing one host, from a fixed set.
public enum ProbeVerdict: String, CaseIterable, Sendable, Codable {
    /// A relay test's RCPT was accepted and DATA answered 354: it relays.
    case open
    /// A RCPT was accepted; DATA confirmation was switched off.
    case openUnconfirmed = "open_unconfirmed"
    /// A RCPT was accepted but DATA refused: not a relay (anonymous mode's false positive).
    case rcptOnly = "rcpt_only"
    /// Every test was refused (5xx, or a 4xx that names relaying as the
    /// reason); or, where the server ended the session before all were run,
    /// every test it answered.
    case closed
    /// The server wants authentication before relaying.
    case authRequired = "auth_required"
    /// Connection refused, a 5xx banner, or not SMTP at all.
    case noSMTP = "no_smtp"
    /// No answer in time.
    case unreachable
    /// A 4xx banner, a test refused only for now (4xx), or a session that
    /// ended before the server answered a test: try again later.
    case tempfail
    /// The conversation broke in a way we could not classify.
    case error
    /// A registered test's message was taken and never delivered within its
    /// window: the host accepts and then discards (not a relay).
    case acceptedUndelivered = "accepted_undelivered"
    /// Not a test's outcome but the host's own doing: it tried to relay
    /// through this site's trap listener (`[trap]`). A spam source, not
    /// necessarily a relay; refused like an open relay unless the config says otherwise.
    case trapped
}

extension ProbeVerdict {
    /// How long the verdict is trusted unless `[cache.ttl]` says otherwise:
    /// a week for a relay found open (it may be fixed), a month for one that
    /// refuses, an hour for one that refused only for now.
    public var defaultTTLSeconds: Int {
        switch self {
        case .open, .openUnconfirmed, .noSMTP: 7 * 86400
        case .rcptOnly, .closed, .authRequired, .acceptedUndelivered, .trapped: 30 * 86400
        case .unreachable, .error: 86400
        case .tempfail: 3600
        }
    }

    /// Whether `[enforcement] verdicts` holds it unless the config says
    /// otherwise: mail from such a host is refused at MAIL, and the host is
    /// published in the zone. Only a relay proven at DATA is, by default, and
    /// a host caught relaying through the trap.
    public var enforcedByDefault: Bool {
        switch self {
        case .open, .trapped: true
        case .openUnconfirmed, .rcptOnly, .closed, .authRequired, .noSMTP, .unreachable, .tempfail, .error, .acceptedUndelivered: false
        }
    }

    /// The A record the published zone answers with for a listed host of
    /// this verdict (listed: in `[enforcement] verdicts`). All answer
    /// 127.0.0.2, as a DNSBL's generic listing does, but a trapped host: a
    /// spam source rather than a relay, which the list's users may weigh
    /// differently, answers 127.0.0.3.
    public var zoneAnswer: String {
        switch self {
        case .open, .openUnconfirmed, .rcptOnly, .closed, .authRequired, .noSMTP, .unreachable, .tempfail, .error, .acceptedUndelivered:
            "127.0.0.2"
        case .trapped:
            "127.0.0.3"
        }
    }

    /// The verdicts as the config and the cache spell them, sorted: for error messages.
    public static var spellings: String { allCases.map(\.rawValue).sorted().joined(separator: ", ") }
}

/// What one relay test saw.
public struct TestOutcome: Sendable, Equatable {
    public let test: RelayTest
    public var mailReply: Int?
    public var rcptReply: Int?
    /// The reply to DATA when the RCPT was accepted and confirmation is on.
    public var dataReply: Int?
    /// The settling refusal's text named relaying as the reason (`SMTPResponse.deniesRelaying`).
    public var refusalDeniesRelaying: Bool

    public init(test: RelayTest, mailReply: Int? = nil, rcptReply: Int? = nil, dataReply: Int? = nil,
                refusalDeniesRelaying: Bool = false) {
        self.test = test
        self.mailReply = mailReply
        self.rcptReply = rcptReply
        self.dataReply = dataReply
        self.refusalDeniesRelaying = refusalDeniesRelaying
    }

    public var rcptAccepted: Bool { rcptReply.map { (200..<300).contains($0) } ?? false }
    public var confirmedAtData: Bool { dataReply == 354 }
    /// 530 (RFC 4954: authentication required) at MAIL or RCPT.
    public var wantsAuthentication: Bool { mailReply == 530 || rcptReply == 530 }

    /// The reply that settled the test: a refused MAIL's, else the RCPT's; nil
    /// when the test never got that far.
    public var finalReply: Int? {
        if let mailReply, !(200..<300).contains(mailReply) { return mailReply }
        return rcptReply
    }

    /// Refused, as evidence that the host does not relay this: a 5xx, or a
    /// 4xx whose text says relaying is denied. The latter is what a Postfix
    /// at its defaults answers (`defer_unauth_destination`: `454 4.7.1 …:
    /// Relay access denied`), a policy refusal softened to 4xx so that a
    /// mistake in the policy delays mail instead of bouncing it; it does not
    /// turn into an acceptance when tried again.
    public var refused: Bool { refusedPermanently || deferredAsRelay }
    /// Refused with a 5xx.
    public var refusedPermanently: Bool { finalReply.map { (500..<600).contains($0) } ?? false }
    /// A 4xx that names relaying as the reason (see `refused`).
    public var deferredAsRelay: Bool { isTemporary(finalReply) && refusalDeniesRelaying }
    /// Refused for now for another reason (greylisting, rate limits,
    /// postscreen's first visit): no evidence either way.
    public var refusedTemporarily: Bool { isTemporary(finalReply) && !refusalDeniesRelaying }

    private func isTemporary(_ code: Int?) -> Bool { code.map { (400..<500).contains($0) } ?? false }
}

/// Everything a probe found.
public struct ProbeReport: Sendable, Equatable {
    public var verdict: ProbeVerdict
    public var outcomes: [TestOutcome]
    /// The first line of the banner, cut to 200 characters.
    public var banner: String
    /// The name the server gave for itself, if any.
    public var hostname: String?
    /// One sentence on why, for logs and the CLI.
    public var detail: String

    public init(verdict: ProbeVerdict, outcomes: [TestOutcome], banner: String, hostname: String?, detail: String) {
        self.verdict = verdict
        self.outcomes = outcomes
        self.banner = banner
        self.hostname = hostname
        self.detail = detail
    }

    /// Names of the tests whose RCPT was accepted.
    public var acceptedTests: [String] { outcomes.filter(\.rcptAccepted).map(\.test.name) }

    /// The verdict the outcomes of a completed session add up to.
    static func classify(_ outcomes: [TestOutcome], confirmWithData: Bool) -> (ProbeVerdict, String) {
        let accepted = outcomes.filter(\.rcptAccepted)
        if let confirmed = accepted.first(where: \.confirmedAtData) {
            return (.open, "relayed \(accepted.count) of \(outcomes.count) tests; \"\(confirmed.test.name)\" confirmed by 354 at DATA")
        }
        if !accepted.isEmpty {
            return confirmWithData
                ? (.rcptOnly, "accepted \(accepted.count) RCPTs of \(outcomes.count) tests but refused DATA")
                : (.openUnconfirmed, "accepted \(accepted.count) RCPTs of \(outcomes.count) tests (DATA not checked)")
        }
        let answered = outcomes.filter { $0.mailReply != nil }
        if !answered.isEmpty, answered.allSatisfy(\.wantsAuthentication) {
            return (.authRequired, "the server asks for authentication (530) before relaying")
        }
        let deferred = outcomes.filter(\.refusedTemporarily).count
        if deferred > 0 {
            return (.tempfail, "refused \(deferred) of \(outcomes.count) tests only for now (4xx: greylisting or a rate limit?); to be tested again")
        }
        let deferredAsRelay = outcomes.filter(\.deferredAsRelay).count
        guard deferredAsRelay > 0 else { return (.closed, "refused all \(outcomes.count) tests") }
        return (.closed, "refused all \(outcomes.count) tests (\(deferredAsRelay) with a 4xx naming relaying as the reason)")
    }
}
