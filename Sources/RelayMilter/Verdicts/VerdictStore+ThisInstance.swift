import RelayConfig
import VerdictStore

extension VerdictStore {
    /// Saves a verdict this instance made (a test by `probe`, a
    /// listing by `cache set`); with a fleet it is queued for the shared
    /// database, as the daemon queues its own.
    func saveAsThisInstance(_ record: VerdictRecord, config: RelayMilterConfig) throws {
        if config.cache.backend == .postgresql {
            try saveAndQueueForSharing([record])
        } else {
            try save(record)
        }
    }
}
