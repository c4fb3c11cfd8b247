import Logging
import Synchronization

/// Watches the verdict database's background writes. A database that stops
/// taking writes (disk full, file gone read-only) must not become a log line
/// per verdict: the first failure is logged, the recovery is logged, and every
/// failure is counted in `relay_milter_cache_errors_total{kind="write"}`.
/// Enforcement never depends on it: verdicts stay in the in-memory index.
final class CacheWriteHealth: Sendable {
    private let failing = Atomic<Bool>(false)
    private let logger: Logger
    private let metrics: RelayMetrics

    init(logger: Logger, metrics: RelayMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    /// The outcome of one write of `what` (a verdict, statistics rollups).
    func record(_ error: (any Error)?, writing what: String) {
        if let error {
            metrics.cacheError("write")
            if !failing.exchange(true, ordering: .relaxed) {
                logger.error("cannot write to the verdict database; verdicts are kept in memory", metadata: [
                    "cache.writing": "\(what)", "error": "\(error)",
                ])
            }
        } else if failing.exchange(false, ordering: .relaxed) {
            logger.notice("the verdict database takes writes again", metadata: ["cache.writing": "\(what)"])
        }
    }
}
