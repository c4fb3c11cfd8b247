import Dispatch
import Foundation
import RelayConfig
import RelayPolicy
import RelayProbe
import VerdictStore

/// Where the trap's relay attempts go: the verdict database, each with the
/// client's `trapped` verdict in the same transaction (so the production
/// daemon, which reads the file's changes, refuses the client within seconds),
/// within `[trap] retention` and `max_records`.
struct TrapEvidence: Sendable {
    let database: VerdictDatabase
    let index: VerdictIndex

    /// How long an end of message waits for the write before it tempfails
    /// the message instead (the client retries; nothing it was told is lost).
    static let writeTimeout = DispatchTimeInterval.seconds(10)

    /// The attempt as stored, or nil when it could not be written in time.
    /// Waits on the database's queue: the one place a milter callback waits
    /// for the disk, and only in a trap process (see docs/DESIGN.md).
    func record(_ attempt: TrapAttemptRecord, client: IPAddress?, config: RelayMilterConfig) -> TrapAttemptRecord? {
        let verdict = client.map { client in
            VerdictRecord(
                host: client.description, verdict: ProbeVerdict.trapped.rawValue, testedAt: attempt.at,
                expiresAt: attempt.at.addingTimeInterval(TimeInterval(config.cache.ttl(for: .trapped))),
                detail: "relay attempt to \(attempt.recipientCount) recipient(s) taken by the trap", source: .trap
            )
        }
        let (retention, maxRecords, share) = (config.trap.retentionSeconds, config.trap.maxRecords, database.queuesForSharing)
        let result = database.withWritableStoreWaiting(timeout: Self.writeTimeout) { store in
            try store.recordTrapAttempt(attempt, verdict: verdict, queueForSharing: share, retention: retention, maxRecords: maxRecords)
        }
        guard case .success(let stored) = result else { return nil }
        if let verdict { index.update(verdict) }
        return stored
    }
}
