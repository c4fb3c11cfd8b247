import Foundation
import Logging
import NIOConcurrencyHelpers
import RelayPolicy
import RelayProbe
import VerdictStore

/// What an alias's token is worth when a message for it comes.
enum RegisteredAliasStatus: Equatable {
    /// The test exists, its window is open, and nothing arrived for it yet.
    case live
    /// Its window ended, or its message already came.
    case ended
    /// No test has it.
    case unknown
    /// No test here has it, but in a fleet another instance may have made
    /// it moments ago and not yet shared it.
    case unknownHere
}

/// Where sessions check and record the arrivals of registered test messages.
/// A protocol so that session tests need no database.
protocol RegisteredArrivals: Sendable {
    func status(token: String, now: Date) -> RegisteredAliasStatus
    /// Records the arrival and makes the host's verdict `open`, confirmed by delivery.
    func record(token: String, client: IPAddress?, hops: [String], at now: Date)
}

/// The arrivals in the verdict database. Tokens are looked up in the file
/// itself, not in memory: `relay-milter probe --registered`, another process,
/// makes them while the daemon runs. Only recipients of the alias's exact
/// shape get here, and a lookup is one primary-key read (SQLite in WAL mode
/// reads beside the writer), through a connection of its own so that it never
/// waits behind the verdict writes' queue.
final class DatabaseArrivals: RegisteredArrivals {
    private let path: String
    private let database: VerdictDatabase
    /// Shares an arrival with the fleet; nil without one.
    private let fleet: FleetSync?
    private let index: VerdictIndex
    private let ttlSeconds: @Sendable () -> Int
    private let logger: Logger
    private let metrics: RelayMetrics
    private let reader = NIOLockedValueBox<VerdictStore?>(nil)

    init(path: String, database: VerdictDatabase, fleet: FleetSync?, index: VerdictIndex, ttlSeconds: @escaping @Sendable () -> Int,
         metrics: RelayMetrics, logger: Logger) {
        self.metrics = metrics
        self.path = path
        self.database = database
        self.fleet = fleet
        self.index = index
        self.ttlSeconds = ttlSeconds
        self.logger = logger
    }

    func status(token: String, now: Date) -> RegisteredAliasStatus {
        let store = reader.withLockedValue { reader -> VerdictStore? in
            if reader == nil { reader = try? VerdictStore(path: path) }
            return reader
        }
        guard let test = try? store?.registeredTest(token: token) else { return fleet == nil ? .unknown : .unknownHere }
        return test.expiresAt > now && (test.state == .sending || test.state == .waiting) ? .live : .ended
    }

    func record(token: String, client: IPAddress?, hops: [String], at now: Date) {
        let (index, ttl, logger, metrics) = (index, ttlSeconds(), logger, metrics)
        let clientText = client.map { "\($0)" } ?? "unknown"
        Task {
            let result = await database.withWritableStore { store -> RegisteredArrival in
                try store.recordArrival(token: token, at: now, from: clientText, hops: hops)
            }
            guard case .success(.recorded(let test)) = result else {
                logger.warning("registered test arrival not recorded", metadata: ["registered.token": "\(token)", "result": "\(String(describing: result))"])
                return
            }
            let delay = Int(now.timeIntervalSince(test.createdAt))
            let record = VerdictRecord.registered(
                test, verdict: .open, detail: "relayed the registered test message to \(test.alias); it arrived from \(clientText) after \(delay) s",
                ttlSeconds: ttl, now: now
            )
            index.update(record)
            database.save(record)
            fleet?.nudge() // the test's new state, for the instance that waits on it
            metrics.registeredTestSettled("delivered")
            logger.notice("registered test confirmed", metadata: [
                "registered.host": "\(test.host)", "registered.token": "\(token)", "client.address": "\(clientText)",
                "registered.delay_s": "\(delay)", "registered.hops": "\(hops.count)",
            ])
        }
    }
}

extension VerdictRecord {
    /// What a settled registered test says of its host, as the verdict cache keeps it.
    static func registered(_ test: RegisteredTestRecord, verdict: ProbeVerdict, detail: String, ttlSeconds: Int, now: Date) -> VerdictRecord {
        VerdictRecord(
            host: test.host, verdict: verdict.rawValue, testedAt: now, expiresAt: now.addingTimeInterval(TimeInterval(ttlSeconds)),
            acceptedTests: verdict == .open ? ["registered test message delivered"] : [], testsRun: 1, banner: "",
            detail: detail, source: .registered
        )
    }
}
