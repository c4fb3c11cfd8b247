import Crypto
import Foundation
import Logging
import MilterKit
import RelayConfig
import RelayPolicy
import VerdictStore

/// One MTA connection to a trap process's socket. On the trap listener (its
/// `{daemon_name}` is one of `[trap] daemon_names`) a relay attempt is taken
/// as an open relay would take it, through DATA, then recorded and discarded
/// at end of message: nothing is ever relayed or delivered. On any other
/// listener the connection is an ordinary `RelaySession`, made at connect.
///
/// `@unchecked Sendable`: as for `RelaySession`, libmilter calls one
/// connection's callbacks one after another, so its state is never shared.
final class TrapSession: MilterSession, @unchecked Sendable {
    private enum Listener {
        /// Before connect.
        case unknown
        /// Not the trap: everything goes to the ordinary session.
        case production(RelaySession)
        case trap
    }

    /// What one message on the trap listener has gathered.
    private struct Message {
        var sender = ""
        var authenticatedUser: String?
        var queueID: String?
        /// Recipients the relay rules refused: what makes the message a relay attempt.
        var relayRecipients = 0
        var relayDomains: [String] = []
        /// Recipients the relay rules allowed (local, or a trusted client's).
        var allowedRecipients = 0
        var subject: String?
        var messageID: String?
        var size = 0
        var body = SHA256()
    }

    private let config: RelayMilterConfig
    private var logger: Logger
    private let evidence: TrapEvidence
    private let metrics: RelayMetrics
    private let makeProductionSession: () -> RelaySession
    private let onClose: @Sendable () -> Void
    private var listener = Listener.unknown
    private var clientAddress: IPAddress?
    private var mta = MTAKind.unknown
    private var helo = ""
    private var message = Message()

    init(config: RelayMilterConfig, logger: Logger, evidence: TrapEvidence, metrics: RelayMetrics,
         makeProductionSession: @escaping () -> RelaySession, onClose: @escaping @Sendable () -> Void) {
        self.config = config
        self.logger = logger
        self.evidence = evidence
        self.metrics = metrics
        self.makeProductionSession = makeProductionSession
        self.onClose = onClose
    }

    func connect(_ info: ConnectInfo) -> MilterResponse {
        // No {daemon_name} (an MTA that did not take our macro list) is not the trap.
        guard let daemon = info.macros["{daemon_name}"], config.trap.daemonNames.contains(daemon) else {
            let session = makeProductionSession()
            listener = .production(session)
            return session.connect(info)
        }
        listener = .trap
        clientAddress = MTAMacros.clientAddress(macro: info.macros["{client_addr}"], socketAddress: info.address).address
        mta = MTAKind(version: info.macros["v"])
        logger[metadataKey: "client.address"] = .string(clientAddress?.description ?? "unknown")
        logger[metadataKey: "mta.daemon"] = .string(truncatedForLog(daemon, limit: 64))
        return .continue
    }

    func helo(_ name: String, macros: Macros) -> MilterResponse {
        if case .production(let session) = listener { return session.helo(name, macros: macros) }
        helo = String(name.prefix(TrapAttemptRecord.Limits.text))
        logger[metadataKey: "client.helo"] = .string(truncatedForLog(name, limit: 128))
        return .continue
    }

    func mailFrom(_ sender: EnvelopeAddress) -> MilterResponse {
        if case .production(let session) = listener { return session.mailFrom(sender) }
        message = Message(sender: sender.address, authenticatedUser: sender.macros["{auth_authen}"], queueID: sender.macros["i"])
        return .continue
    }

    func recipient(_ recipient: EnvelopeAddress) -> MilterResponse {
        if case .production(let session) = listener { return session.recipient(recipient) }
        if let queueID = recipient.macros["i"] { message.queueID = queueID }
        let transaction = RelayTransaction(
            clientAddress: clientAddress, authenticatedUser: message.authenticatedUser, sender: message.sender,
            recipient: recipient.address, mtaRouting: MTAMacros.routing(recipient.macros, mta: mta)
        )
        // The same rules as every listener: what they refuse is a relay
        // attempt, taken here as an open relay would take it.
        switch decide(transaction, config: config.policy).verdict {
        case .deny:
            message.relayRecipients += 1
            let domain = Self.domain(of: recipient.address)
            if message.relayDomains.count < TrapAttemptRecord.Limits.domains, !message.relayDomains.contains(domain) {
                message.relayDomains.append(domain)
            }
        case .allow:
            message.allowedRecipients += 1
        case .observe:
            break
        }
        return .continue
    }

    func data(macros: Macros) -> MilterResponse {
        if case .production(let session) = listener { return session.data(macros: macros) }
        if let queueID = macros["i"] { message.queueID = queueID }
        return .continue
    }

    func header(name: String, value: String) -> MilterResponse {
        if case .production(let session) = listener { return session.header(name: name, value: value) }
        message.size += name.utf8.count + value.utf8.count + 4 // "name: value\r\n"
        switch name.lowercased() {
        case "subject" where message.subject == nil: message.subject = Self.unfolded(value)
        case "message-id" where message.messageID == nil: message.messageID = Self.unfolded(value)
        default: break
        }
        return .continue
    }

    func body(_ chunk: UnsafeRawBufferPointer) -> MilterResponse {
        if case .production(let session) = listener { return session.body(chunk) }
        message.size += chunk.count
        message.body.update(bufferPointer: chunk)
        return .continue
    }

    func endOfMessage(macros: Macros) -> (MilterResponse, [HeaderField]) {
        if case .production(let session) = listener { return session.endOfMessage(macros: macros) }
        defer { message = Message() }
        if let queueID = macros["i"] { message.queueID = queueID }
        if message.relayRecipients > 0 { return (recordRelayAttempt(), []) }
        if message.allowedRecipients > 0, config.trap.localMail == .discard {
            metrics.trapMessage("local")
            logger.info("allowed mail on the trap listener discarded", metadata: ["queue.id": "\(message.queueID ?? "")"])
            return (.discard, [])
        }
        return (.continue, [])
    }

    /// Records the attempt and the client's verdict, then discards the
    /// message; the client hears 250 only once its evidence is on disk, so a
    /// crash loses nothing it was told was taken.
    private func recordRelayAttempt() -> MilterResponse {
        let now = Date()
        let attempt = TrapAttemptRecord(
            at: now, client: clientAddress?.description ?? "unknown", helo: helo,
            sender: ReplyTemplate.bare(message.sender),
            recipientCount: message.relayRecipients, recipientDomains: message.relayDomains, size: message.size,
            subject: message.subject ?? "", messageID: message.messageID ?? "",
            bodySHA256: message.body.finalize().map { String(format: "%02x", $0) }.joined(),
            queueID: String((message.queueID ?? "").prefix(64))
        )
        guard let stored = evidence.record(attempt, client: clientAddress, config: config) else {
            metrics.trapMessage("unrecorded")
            logger.error("relay attempt not recorded: the evidence database cannot be written; tempfailed", metadata: [
                "queue.id": "\(attempt.queueID)",
            ])
            return .tempfail(SMTPReply(code: "451", enhancedCode: "4.3.0", lines: ["Temporary failure, try again later"]))
        }
        metrics.trapMessage("relay_attempt", recipients: attempt.recipientCount)
        logger.notice("relay attempt trapped", metadata: [
            "trap.id": "\(stored.id ?? 0)",
            "queue.id": "\(attempt.queueID)",
            "mail.from": "\(truncatedForLog(attempt.sender))",
            "trap.recipients": "\(attempt.recipientCount)",
            "trap.domains": "\(truncatedForLog(attempt.recipientDomains.joined(separator: ","), limit: 200))",
            "trap.size": "\(attempt.size)",
        ])
        return .discard
    }

    func abort() {
        if case .production(let session) = listener { return session.abort() }
        message = Message()
    }

    func close() {
        if case .production(let session) = listener { return session.close() }
        metrics.connectionClosed()
        onClose()
    }

    /// The recipient's domain, lower-cased and bounded ("" with none).
    private static func domain(of address: String) -> String {
        let bare = ReplyTemplate.bare(address)
        guard let at = bare.lastIndex(of: "@") else { return "" }
        return String(bare[bare.index(after: at)...].prefix(TrapAttemptRecord.Limits.text)).lowercased()
    }

    /// One line, each run of white space (folding included) one space, bounded.
    private static func unfolded(_ value: String) -> String {
        String(value.split(whereSeparator: \.isWhitespace).joined(separator: " ").prefix(TrapAttemptRecord.Limits.text))
    }
}
