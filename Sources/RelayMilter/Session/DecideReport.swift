import Foundation
import RelayConfig
import RelayPolicy

/// What `relay-milter decide` is asked about.
public struct DecideRequest: Sendable {
    public var client: String
    public var helo: String?
    public var auth: String?
    public var from: String
    public var recipients: [String]
    public var rcptMailer: String?
    public var rcptHost: String?
    public var rcptAddr: String?
    /// Whose spelling the `rcpt*` macros are in.
    public var mta: MTAKind

    public init(client: String, helo: String?, auth: String?, from: String, recipients: [String], rcptMailer: String?, rcptHost: String?, rcptAddr: String?,
                mta: MTAKind = .postfix) {
        self.client = client
        self.helo = helo
        self.auth = auth
        self.from = from
        self.recipients = recipients
        self.rcptMailer = rcptMailer
        self.rcptHost = rcptHost
        self.rcptAddr = rcptAddr
        self.mta = mta
    }
}

/// The offline explanation of a transaction: the same `RecipientOutcome`s the milter acts on.
public struct DecideReport: Sendable {
    public struct BadClient: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "--client \"\(text)\" is not an IPv4 or IPv6 address (in either MTA's {client_addr} spelling)" }
    }

    public let request: DecideRequest
    public let mode: PolicyMode
    public let outcomes: [RecipientOutcome]

    public init(_ request: DecideRequest, config: RelayMilterConfig) throws(BadClient) {
        guard let client = MTAMacros.address(request.client) else { throw BadClient(text: request.client) }
        self.request = request
        self.mode = config.rules.mode
        self.outcomes = request.recipients.map { recipient in
            RecipientOutcome(
                RelayTransaction(
                    clientAddress: client, authenticatedUser: request.auth, sender: request.from, recipient: recipient,
                    mtaRouting: MTARouting(transport: request.rcptMailer, nextHop: request.rcptHost, address: request.rcptAddr,
                                           resolvedAfterAliases: request.mta.resolvesAliasesBeforeMilters)
                ),
                config: config
            )
        }
    }

    /// One JSON line per recipient.
    struct Line: Encodable {
        let rcpt: String
        let action: String
        let reason: String
        let verdict: String
        let configured_action: String
        let mode: String
        let explanation: String
        let reply: String?
    }

    public func jsonLines() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return outcomes.map { outcome in
            let line = Line(
                rcpt: outcome.recipient, action: outcome.action.applied.rawValue, reason: outcome.decision.reason.rawValue,
                verdict: outcome.decision.verdict.rawValue, configured_action: outcome.action.configured.rawValue,
                mode: mode.rawValue, explanation: outcome.decision.explanation,
                reply: outcome.replyLine
            )
            let data = (try? encoder.encode(line)) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        }.joined()
    }

    public func text() -> String {
        var out = "client \(request.client)"
        if let helo = request.helo { out += " helo \(helo)" }
        if let auth = request.auth { out += " auth \(auth)" }
        out += " from \(request.from) (mode \(mode.rawValue))\n"
        for outcome in outcomes {
            out += "  rcpt \(outcome.recipient): \(outcome.action.applied.rawValue.uppercased())"
            if outcome.action.configured != outcome.action.applied {
                out += " (would \(outcome.action.configured.rawValue))"
            }
            out += " [\(outcome.decision.reason.rawValue)] \(outcome.decision.explanation)\n"
            if let reply = outcome.replyLine {
                out += "    reply: \(reply)\n"
            }
        }
        return out
    }
}
