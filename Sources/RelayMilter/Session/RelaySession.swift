import Foundation
import Logging
import MilterKit
import RelayConfig
import RelayPolicy
import RelayProbe
import Synchronization
import VerdictStore

/// One MTA connection: collects the client facts, asks the relay rules about
/// each recipient, logs the decision and turns it into a milter reply.
///
/// `@unchecked Sendable`: MilterKit calls one session's methods strictly one
/// after another (libmilter serialises a connection's callbacks), possibly from
/// different threads, so the mutable state below is never accessed concurrently.
final class RelaySession: MilterSession, @unchecked Sendable {
    /// The config snapshot taken when the connection started; reloads don't change it.
    private let config: RelayMilterConfig
    private var logger: Logger
    private let onClose: @Sendable () -> Void
    /// Called at connect when the MTA did not take our macro lists.
    private let onMacroListRefused: @Sendable () -> Void
    private let hostVerdicts: HostVerdicts
    private let metrics: RelayMetrics
    private let stats: StatsCollector
    /// Registered tests' arrivals; nil when `[registered]` is off.
    private let registered: (any RegisteredArrivals)?

    private var clientAddress: IPAddress?
    /// Which MTA speaks (its `v` macro), for what its recipient macros mean.
    private var mta = MTAKind.unknown
    /// What the open-relay cache said about the client at connect.
    private var hostStanding = HostStanding.notTested
    private var hostRecord: VerdictSummary?
    /// A test of this client was asked for (see requestTestIfUntested).
    private var testRequested = false
    /// Some MAIL of this connection came with {auth_authen}.
    private var authenticated = false
    /// What the DNS blocklists' cached answers said, at connect or (if nothing then) at MAIL FROM.
    private var dnsblListing: DNSBLListing?
    private var message = MessageState()

    /// What one message (MAIL FROM to end or abort) has gathered.
    private struct MessageState {
        var sender = ""
        var authenticatedUser: String?
        var queueID: String?
        var tags: [HeaderField] = []
        /// Recipients taken so far (a registered test's alias takes no company).
        var recipients = 0
        /// The token of the registered test this message is the message of.
        var registeredToken: String?
        /// Its Received fields, newest first, bounded.
        var hops: [String] = []
        /// A host refusal put off from MAIL to each recipient that is not a
        /// registered test's alias (a host under test may be one refused).
        var deferredHostRefusal: MilterResponse?
    }

    init(config: RelayMilterConfig, logger: Logger, hostVerdicts: HostVerdicts, metrics: RelayMetrics, stats: StatsCollector,
         registered: (any RegisteredArrivals)? = nil,
         onMacroListRefused: @escaping @Sendable () -> Void = {}, onClose: @escaping @Sendable () -> Void) {
        self.config = config
        self.registered = config.registered.enabled ? registered : nil
        self.onMacroListRefused = onMacroListRefused
        self.logger = logger
        self.hostVerdicts = hostVerdicts
        self.metrics = metrics
        self.stats = stats
        self.onClose = onClose
    }

    /// Runs one callback's work and records how long it took.
    private func timed<T>(_ stage: RelayMetrics.Stage, _ body: () -> T) -> T {
        let started = ContinuousClock.now
        defer { metrics.callback(stage, took: ContinuousClock.now - started) }
        return body()
    }

    /// The stages at which this session only records and always continues
    /// (host verdicts are enforced at MAIL FROM, relay policy at RCPT TO), so
    /// the MTA may be told not to wait for their reply. Not CONNECT, though it
    /// too always continues: libmilter drops commands it has not read yet when
    /// the MTA hangs up, so without a reply to wait for, a client that
    /// disconnects at once would never reach `connect` and never be tested.
    static let quietStages: Set<MilterStage> = [.helo, .data]

    /// Quiet stages that tell this session nothing it does not get later:
    /// DATA's one macro, the queue ID, comes again at end of message. (HELO
    /// is not one: its name goes into the log lines.)
    static let skippedStages: Set<MilterStage> = [.data]

    func connect(_ info: ConnectInfo) -> MilterResponse {
        timed(.connect) { handleConnect(info) }
    }

    private func handleConnect(_ info: ConnectInfo) -> MilterResponse {
        if !info.macroListTaken { onMacroListRefused() }
        let client = MTAMacros.clientAddress(macro: info.macros["{client_addr}"], socketAddress: info.address)
        clientAddress = client.address
        mta = MTAKind(version: info.macros["v"])
        // Plain `.string` values, not interpolations: this runs for every connection.
        logger[metadataKey: "client.address"] = .string(clientAddress?.description ?? "unknown")
        logger[metadataKey: "client.name"] = .string(truncatedForLog(info.hostname, limit: 128))
        if let daemon = info.macros["{daemon_name}"] {
            logger[metadataKey: "mta.daemon"] = .string(truncatedForLog(daemon, limit: 64))
        }
        if let unknown = client.unknown {
            // Once per connection: trusted networks cannot match it, and it is
            // never tested, so unknown_action is all that applies to it.
            metrics.clientUnidentified(unknown)
            logger.warning("client address unknown", metadata: [
                "mta.client_addr": .string(client.unreadMacro.map { truncatedForLog($0, limit: 64) } ?? "absent"),
                "client.unknown": .string(unknown.rawValue),
            ])
        }
        // Only what is cached counts; a test of an unknown host waits for MAIL,
        // where the MTA says whether the client authenticated.
        (hostStanding, hostRecord) = hostVerdicts.standing(of: clientAddress, config: config)
        dnsblListing = hostVerdicts.dnsblListing(of: clientAddress, config: config)
        return .continue
    }

    func helo(_ name: String, macros: Macros) -> MilterResponse {
        logger[metadataKey: "client.helo"] = .string(truncatedForLog(name, limit: 128))
        return .continue
    }

    func mailFrom(_ sender: EnvelopeAddress) -> MilterResponse {
        timed(.mail) { handleMailFrom(sender) }
    }

    private func handleMailFrom(_ sender: EnvelopeAddress) -> MilterResponse {
        message = MessageState(
            sender: sender.address,
            authenticatedUser: sender.macros["{auth_authen}"],
            queueID: sender.macros["i"]
        )
        if (message.authenticatedUser ?? "").isEmpty { requestTestIfUntested() } else { authenticated = true }
        let response = checkHost()
        // A host the admin answers for may be refused as an open relay and
        // still be under a registered test: its message comes to an alias.
        if registered != nil, response != .continue, let clientAddress,
           config.registered.networks.contains(where: { $0.contains(clientAddress) }) {
            message.deferredHostRefusal = response
            return .continue
        }
        return response
    }

    /// The open-relay verdict applied at MAIL FROM, once authentication is known.
    private func checkHost() -> MilterResponse {
        // Answers that came in since connect count too; still nothing is waited for.
        if dnsblListing == nil { dnsblListing = hostVerdicts.dnsblListing(of: clientAddress, config: config) }
        let check = HostCheck(
            clientAddress: clientAddress, authenticatedUser: message.authenticatedUser, standing: hostStanding,
            holdUntested: config.enforcement.unknownAction != .accept, dnsblListing: dnsblListing
        )
        let decision = decideHost(check, config: config.policy)
        // A host not denied is accepted whatever the rules say; they are
        // built from three settings, so only a refusal builds them.
        guard decision.verdict == .deny else {
            metrics.decision(stage: .mail, action: .accept, reason: decision.reason)
            return .continue
        }
        let action = config.hostRules.resolve(decision)
        metrics.decision(stage: .mail, action: action.applied, reason: decision.reason)
        stats.record(action: action.applied, reason: decision.reason, client: clientAddress, recipient: nil)
        var metadata: Logger.Metadata = [
            "mail.from": "\(truncatedForLog(message.sender))",
            "decision.verdict": "\(decision.verdict.rawValue)",
            "decision.reason": "\(decision.reason.rawValue)",
            "decision.action": "\(action.applied.rawValue)",
            "policy.mode": "\(config.rules.mode.rawValue)",
            "host.verdict": "\(hostRecord?.verdict.rawValue ?? "untested")",
        ]
        if action.configured != action.applied { metadata["decision.would"] = "\(action.configured.rawValue)" }
        if decision.reason == .dnsblListed, let listing = dnsblListing {
            metadata["dnsbl.zone"] = "\(listing.zone)"
            metadata["dnsbl.text"] = "\(truncatedForLog(listing.text, limit: 200))"
            logger.notice("host decision", metadata: metadata)
            let dnsbl = config.dnsbl
            return respond(
                action.applied, tag: HeaderField(name: dnsbl.tagHeader, value: DNSBLReplyTemplate.tagValue(listing)),
                reject: DNSBLReplyTemplate.render(dnsbl.rejectText, client: clientAddress, listing: listing),
                tempfail: DNSBLReplyTemplate.render(dnsbl.tempfailText, client: clientAddress, listing: listing)
            )
        }
        logger.notice("host decision", metadata: metadata)
        let enforcement = config.enforcement
        return respond(
            action.applied, tag: HeaderField(name: enforcement.tagHeader, value: HostReplyTemplate.tagValue(hostRecord)),
            // A trapped host is told what it did, not that it is an open relay.
            reject: HostReplyTemplate.render(hostRecord?.verdict == .trapped ? config.trap.rejectText : enforcement.rejectText,
                                             client: clientAddress, record: hostRecord),
            tempfail: HostReplyTemplate.render(enforcement.tempfailText, client: clientAddress, record: hostRecord)
        )
    }

    /// A host decision's applied action as the milter's answer; each text is made only if used.
    private func respond(
        _ action: PolicyAction, tag: @autoclosure () -> HeaderField, reject: @autoclosure () -> String,
        tempfail: @autoclosure () -> String
    ) -> MilterResponse {
        switch action {
        case .accept:
            return .continue
        case .tag:
            message.tags.append(tag())
            return .continue
        case .reject:
            return .reject(Self.reply(.reject, reject()))
        case .tempfail:
            return .tempfail(Self.reply(.tempfail, tempfail()))
        }
    }

    func recipient(_ recipient: EnvelopeAddress) -> MilterResponse {
        timed(.rcpt) { handleRecipient(recipient) }
    }

    private func handleRecipient(_ recipient: EnvelopeAddress) -> MilterResponse {
        // Postfix names the queue file once the first recipient is accepted.
        if let queueID = recipient.macros["i"] { message.queueID = queueID }
        if let registered, let domain = config.registeredDomain,
           let token = RegisteredAlias.token(in: ReplyTemplate.bare(recipient.address), prefix: config.registered.prefix, domain: domain) {
            return registeredRecipient(token, recipient.address, registered)
        }
        if message.registeredToken != nil { return .reject(Self.registeredAloneReply) }
        if let refusal = message.deferredHostRefusal { return refusal }
        message.recipients += 1
        let transaction = RelayTransaction(
            clientAddress: clientAddress,
            authenticatedUser: message.authenticatedUser,
            sender: message.sender,
            recipient: recipient.address,
            mtaRouting: MTAMacros.routing(recipient.macros, mta: mta)
        )
        let outcome = RecipientOutcome(transaction, config: config)
        log(outcome, transaction: transaction)
        metrics.decision(stage: .rcpt, action: outcome.action.applied, reason: outcome.decision.reason)
        stats.record(action: outcome.action.applied, reason: outcome.decision.reason, client: clientAddress, recipient: recipient.address)

        switch outcome.action.applied {
        case .accept:
            return .continue
        case .tag:
            if message.tags.count < Self.maxTagHeaders {
                message.tags.append(HeaderField(name: config.replies.tagHeader, value: outcome.tagValue(client: clientAddress)))
            }
            return .continue
        case .reject:
            return .reject(Self.reply(.reject, outcome.replyText))
        case .tempfail:
            return .tempfail(Self.reply(.tempfail, outcome.replyText))
        }
    }

    private static func reply(_ status: RecipientOutcome.ReplyStatus, _ text: String?) -> SMTPReply {
        // A configured text with line breaks becomes a multi-line SMTP reply.
        let text = text ?? "Relay access denied"
        let lines = text.utf8.contains(UInt8(ascii: "\n"))
            ? text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) : [text]
        return SMTPReply(code: status.code, enhancedCode: status.enhancedCode, lines: lines)
    }

    /// A registered test's alias: taken alone, within its window, once.
    private func registeredRecipient(_ token: String, _ address: String, _ registered: any RegisteredArrivals) -> MilterResponse {
        guard message.recipients == 0, message.registeredToken == nil else { return .reject(Self.registeredAloneReply) }
        switch registered.status(token: token, now: Date()) {
        case .live:
            break
        case .ended, .unknown:
            metrics.registeredAliasRefused()
            logger.notice("registered test address refused", metadata: ["mail.rcpt": "\(truncatedForLog(address))"])
            return .reject(SMTPReply(code: "550", enhancedCode: "5.1.1", lines: ["\(truncatedForLog(address)): unknown or expired test address"]))
        case .unknownHere:
            // Made by another instance and not copied here yet: the sender's retry finds it.
            metrics.registeredAliasRefused()
            logger.notice("registered test address not known here yet", metadata: ["mail.rcpt": "\(truncatedForLog(address))"])
            return .tempfail(SMTPReply(code: "450", enhancedCode: "4.1.1", lines: ["\(truncatedForLog(address)): test address not known here yet, try again later"]))
        }
        message.registeredToken = token
        logger.info("registered test message arriving", metadata: ["registered.token": "\(token)", "mail.rcpt": "\(truncatedForLog(address))"])
        return .continue
    }

    private static let registeredAloneReply = SMTPReply(code: "550", enhancedCode: "5.5.3",
                                                        lines: ["a registered test address takes no other recipient"])

    /// How many Received fields of a test message are kept, and how much of each.
    static let maxHops = 30, maxHopLength = 300

    func header(name: String, value: String) -> MilterResponse {
        guard message.registeredToken != nil, message.hops.count < Self.maxHops, name.lowercased() == "received" else { return .continue }
        // Unfolded: each run of white space (folding included) becomes one space.
        // (Character's test: a CR LF pair is one Character, equal to neither alone.)
        let unfolded = value.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        message.hops.append(String(unfolded.prefix(Self.maxHopLength)))
        return .continue
    }

    /// A message with thousands of tagged recipients gets a bounded header block.
    static let maxTagHeaders = 20

    func data(macros: Macros) -> MilterResponse {
        if let queueID = macros["i"] { message.queueID = queueID }
        return .continue
    }

    func endOfMessage(macros: Macros) -> (MilterResponse, [HeaderField]) {
        timed(.eom) { handleEndOfMessage(macros: macros) }
    }

    private func handleEndOfMessage(macros: Macros) -> (MilterResponse, [HeaderField]) {
        if let token = message.registeredToken, let registered {
            // Proof kept, message dropped: no mailbox fills with tests.
            registered.record(token: token, client: clientAddress, hops: message.hops, at: Date())
            message = MessageState()
            return (.discard, [])
        }
        let tags = message.tags
        if !tags.isEmpty {
            metrics.messageTagged()
            logger.info("message tagged", metadata: [
                "queue.id": "\(macros["i"] ?? message.queueID ?? "")",
                "tag.count": "\(tags.count)",
            ])
        }
        message = MessageState()
        return (.continue, tags)
    }

    func abort() {
        message = MessageState()
    }

    func close() {
        // A client that left before any MAIL (a scanner's hit and run) did so
        // unauthenticated as far as the MTA told us: test it now.
        if !authenticated { requestTestIfUntested() }
        metrics.connectionClosed()
        onClose()
    }

    /// Queues a test of this client if nothing fresh is known of it, once per
    /// connection. Never for an authenticated client: it is a user (its
    /// address often a home line), not a relay to test. The MTA says so only
    /// with MAIL, hence the first unauthenticated MAIL, or the end of a
    /// connection that had none, is when.
    private func requestTestIfUntested() {
        guard hostStanding == .untested, !testRequested, let clientAddress else { return }
        hostVerdicts.requestTest(of: clientAddress, config: config)
        testRequested = true
    }

    private func log(_ outcome: RecipientOutcome, transaction: RelayTransaction) {
        // Sized for every field, and plain `.string` values: this runs once per recipient.
        var metadata = Logger.Metadata(minimumCapacity: 11)
        metadata["mail.from"] = .string(truncatedForLog(transaction.sender))
        metadata["mail.rcpt"] = .string(truncatedForLog(transaction.recipient))
        metadata["decision.verdict"] = .string(outcome.decision.verdict.rawValue)
        metadata["decision.reason"] = .string(outcome.decision.reason.rawValue)
        metadata["decision.action"] = .string(outcome.action.applied.rawValue)
        metadata["policy.mode"] = .string(config.rules.mode.rawValue)
        if outcome.action.configured != outcome.action.applied {
            metadata["decision.would"] = .string(outcome.action.configured.rawValue)
        }
        if let queueID = message.queueID { metadata["queue.id"] = .string(queueID) }
        if let user = message.authenticatedUser { metadata["client.auth"] = .string(truncatedForLog(user, limit: 64)) }
        let routing = transaction.mtaRouting
        if let transport = routing.transport { metadata["mta.transport"] = .string(truncatedForLog(transport, limit: 64)) }
        // Where the MTA rewrote the recipient (qualified it, or forwarded it
        // through an alias table), what it made of it: why `decide` on the
        // recipient alone can differ. (For a recipient the MTA refused,
        // `{rcpt_addr}` is its reply text, not an address.)
        if let rewritten = transaction.mtaRewrittenAddress, !routing.isRejectedByMTA {
            metadata["mta.rcpt_addr"] = .string(truncatedForLog(rewritten))
        }
        let level: Logger.Level = outcome.decision.verdict == .deny ? .notice : .info
        logger.log(level: level, "relay decision", metadata: metadata)
    }
}

/// Makes a session per MTA connection with the config in force at that moment,
/// and counts the sessions open so a stop can wait for them.
final class RelaySessionFactory: MilterSessionFactory {
    private let store: ConfigStore
    private let logger: Logger
    private let hostVerdicts: HostVerdicts
    private let metrics: RelayMetrics
    private let stats: StatsCollector
    private let registered: (any RegisteredArrivals)?
    /// Where a trap process's sessions record relay attempts; nil when `[trap]` is off.
    private let trapEvidence: TrapEvidence?
    private let stopping = Atomic<Bool>(false)
    private let macroListWarned = Atomic<Bool>(false)
    let openSessions: OpenSessionCounter

    init(store: ConfigStore, logger: Logger, registered: (any RegisteredArrivals)? = nil, trapEvidence: TrapEvidence? = nil,
         hostVerdicts: HostVerdicts, metrics: RelayMetrics, stats: StatsCollector) {
        self.registered = registered
        self.trapEvidence = trapEvidence
        self.store = store
        self.logger = logger
        self.hostVerdicts = hostVerdicts
        self.metrics = metrics
        self.stats = stats
        self.openSessions = OpenSessionCounter()
    }

    /// From now on connections get a `ClosedForStopSession`, which is not
    /// counted, so `openSessions` only falls while the sessions already open finish.
    func refuseNewSessions() {
        stopping.store(true, ordering: .relaxed)
    }

    func makeSession() -> any MilterSession {
        if stopping.load(ordering: .relaxed) { return ClosedForStopSession.shared }
        openSessions.opened()
        metrics.connectionOpened()
        let counter = openSessions
        let config = store.snapshot
        let production = { [self] in
            RelaySession(
                config: config, logger: logger, hostVerdicts: hostVerdicts, metrics: metrics, stats: stats, registered: registered,
                onMacroListRefused: { [self] in warnMacroListRefused() }, onClose: { counter.closed() }
            )
        }
        // A trap process's connections learn at connect which listener they came to.
        guard config.trap.enabled, let trapEvidence else { return production() }
        return TrapSession(config: config, logger: logger, evidence: trapEvidence, metrics: metrics,
                           makeProductionSession: production, onClose: { counter.closed() })
    }

    /// Once per process: an MTA that does not take our macro lists sends only
    /// the macros its own settings name, and without `{auth_authen}` every
    /// authenticated client is refused with nothing else to say why.
    private func warnMacroListRefused() {
        guard !macroListWarned.exchange(true, ordering: .relaxed) else { return }
        let needed = MilterStage.allCases.compactMap { stage -> String? in
            let names = MilterDaemon.macros[stage]
            return names.isEmpty ? nil : "\(stage.rawValue): \(names.joined(separator: " "))"
        }
        logger.warning("the MTA did not take relay-milter's macro list; it sends only the macros its own settings name", metadata: [
            "mta.macros_needed": .string(needed.joined(separator: "; ")),
            "hint": "add these to the MTA's milter macro settings (Postfix milter_*_macros, Sendmail confMILTER_MACROS_*); without {auth_authen} authenticated clients are refused",
        ])
    }
}
