import Foundation
import Logging
import RelayProbe
import VerdictStore

/// Closes registered tests' windows as they end: a host that took the test
/// message and never delivered it gets `accepted_undelivered` (it accepts
/// and then discards), whether or not `probe --registered` still waits.
/// In a fleet the shared database closes them, once for all instances: the
/// message may have come back through another one.
struct RegisteredWindows: Sendable {
    let database: VerdictDatabase
    let fleet: FleetSync?
    let index: VerdictIndex
    let store: ConfigStore
    let metrics: RelayMetrics
    let logger: Logger
    /// How often windows are checked: a verdict comes at most this late.
    let interval: Duration

    func run() async {
        while !Task.isCancelled {
            await closeEnded(at: Date())
            try? await Task.sleep(for: interval)
        }
    }

    func closeEnded(at now: Date) async {
        let undelivered: [RegisteredTestRecord]
        if let fleet {
            guard let closed = await fleet.closeRegisteredWindows(at: now) else { return }
            undelivered = closed
        } else {
            guard case .success(let closed)? = await database.withWritableStore({ store in try store.closeRegisteredWindows(at: now) }) else {
                return
            }
            undelivered = closed
        }
        let ttl = store.snapshot.cache.ttl(for: .acceptedUndelivered)
        for test in undelivered {
            let record = VerdictRecord.registered(
                test, verdict: .acceptedUndelivered,
                detail: "took the registered test message to \(test.alias) (\(test.sentReply)) and never delivered it", ttlSeconds: ttl, now: now
            )
            index.update(record)
            database.save(record)
            metrics.registeredTestSettled("undelivered")
            logger.notice("registered test undelivered", metadata: ["registered.host": "\(test.host)", "registered.token": "\(test.token)"])
        }
    }
}
