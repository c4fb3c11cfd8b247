import Foundation
import Logging
import NIOCore
import RelayProbe
import RelayProbeNIO
import VerdictStore

/// The registered tests the daemon starts itself. When an anonymous test
/// leaves a host in `[registered] networks` `open_unconfirmed` or `rcpt_only`
/// (a RCPT was taken, and what the host does with a real message is not
/// known), one message is relayed through it, within the same limits as
/// `probe --registered`; its arrival, or the end of its window, settles the
/// verdict (`RegisteredArrivals`, `RegisteredWindows`). Never for a host
/// outside those networks: sending a message through a stranger's server is
/// using an open relay, not testing it.
struct RegisteredFollowUps: Sendable {
    let database: VerdictDatabase
    /// Shares the test before its message leaves; nil without a fleet.
    let fleet: FleetSync?
    let store: ConfigStore
    let sender: RegisteredSender
    let metrics: RelayMetrics
    let logger: Logger

    /// The anonymous verdicts a delivered (or undelivered) message settles.
    static func isUnsettled(_ verdict: ProbeVerdict) -> Bool {
        switch verdict {
        case .openUnconfirmed, .rcptOnly: true
        case .open, .closed, .authRequired, .noSMTP, .unreachable, .tempfail, .error, .acceptedUndelivered, .trapped: false
        }
    }

    /// Starts a registered test of `target` if its anonymous `verdict` calls
    /// for one and the config allows it; returns when the host has answered
    /// the message. A refused message leaves the anonymous verdict as it is:
    /// it proves only that this one message was refused.
    func followUp(_ target: ProbeTarget, anonymousVerdict verdict: ProbeVerdict) async {
        guard Self.isUnsettled(verdict) else { return }
        let config = store.snapshot
        // Hosts outside the networks are the common case, and not worth a log line.
        guard RegisteredTestRun.refusal(target, config: config) == nil else { return }
        let now = Date()
        let begun = await database.withWritableStore { store in try RegisteredTestRun.begin(target, config: config, store: store, now: now) }
        guard case .success(let (test, message))? = begun else {
            let why = switch begun {
            case .failure(let error)?: "\(error)"
            case .success?, nil: "the verdict database cannot be written"
            }
            logger.info("registered test not started", metadata: ["registered.host": "\(target.address)", "reason": "\(why)"])
            return
        }
        let token = test.token
        await fleet?.share(test)
        let report = (try? await RegisteredTestRun.send(message, to: target, config: config, with: sender).get()) ?? RegisteredTestRun.aborted
        // The log and the counter below go by what the host answered, whether or not the database took the row.
        _ = await database.withWritableStore { store in try RegisteredTestRun.settle(report, token: token, store: store) }
        fleet?.nudge() // the sending's outcome, for the fleet
        var metadata: Logger.Metadata = [
            "registered.host": "\(target.address)", "registered.token": "\(token)", "registered.anonymous_verdict": "\(verdict.rawValue)",
        ]
        switch report.outcome {
        case .accepted:
            metadata["registered.reply"] = "\(truncatedForLog(RegisteredTestRun.replyText(report), limit: 200))"
            logger.notice("registered test sent", metadata: metadata)
        case .refused, .deferred:
            metadata["registered.reply"] = "\(truncatedForLog(RegisteredTestRun.replyText(report), limit: 200))"
            metrics.registeredTestSettled("refused")
            logger.notice("registered test refused", metadata: metadata)
        case .failed(let why):
            metadata["registered.reply"] = "\(truncatedForLog(why, limit: 200))"
            metrics.registeredTestSettled("not_sent")
            logger.warning("registered test not sent", metadata: metadata)
        }
    }
}
