import Foundation
import GRDB
import RelayProbe

/// Verdict records in an embedded SQLite database in WAL mode, so the daemon
/// writes while `relay-milter cache ...` reads (and writes) beside it.
///
/// Every call is synchronous; the daemon makes its calls from a queue of its
/// own (`VerdictDatabase`), never from a milter or probe thread.
public final class VerdictStore: Sendable {
    /// A `DatabasePool` when writable; a read-only `DatabaseQueue` for a
    /// snapshot (see `openReadOnlySnapshot`).
    let pool: any DatabaseWriter
    public let path: String
    /// The file opened, to notice when the path stops naming it (see `fileAtPath`).
    let opened: FileIdentity?

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
        opened = FileIdentity(path: path)
    }

    init(path: String, readOnlyPool: DatabaseQueue) {
        self.path = path
        pool = readOnlyPool
        opened = nil
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: verdicts") { db in
            try db.create(table: VerdictRecord.databaseTableName) { t in
                t.primaryKey("host", .text)
                t.column("verdict", .text).notNull().indexed()
                t.column("tested_at", .datetime).notNull()
                t.column("expires_at", .datetime).notNull().indexed()
                t.column("accepted_tests", .jsonText).notNull()
                t.column("tests_run", .integer).notNull()
                t.column("banner", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("source", .text).notNull()
            }
        }
        migrator.registerMigration("v2: statistics rollups") { db in
            try db.create(table: "stats_rollup") { t in
                t.column("granularity", .text).notNull()
                t.column("period", .integer).notNull()
                t.column("action", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("count", .integer).notNull()
                t.primaryKey(["granularity", "period", "action", "reason"])
            }
        }
        migrator.registerMigration("v3: verdicts not yet shared") { db in
            // Hosts whose verdict this instance has not yet written to the
            // fleet's shared database (issue 8): the queue outlives a restart.
            try db.create(table: "shared_outbox") { t in
                t.primaryKey("host", .text)
            }
        }
        migrator.registerMigration("v4: registered tests") { db in
            // One row per registered test (issue 34): its one-time alias, and
            // what came of it, so that an arrival after a restart still counts.
            try db.create(table: RegisteredTestRecord.databaseTableName) { t in
                t.primaryKey("token", .text)
                t.column("host", .text).notNull().indexed()
                t.column("port", .integer).notNull()
                t.column("alias", .text).notNull()
                t.column("created_at", .datetime).notNull().indexed()
                t.column("expires_at", .datetime).notNull()
                t.column("state", .text).notNull()
                t.column("sent_reply", .text).notNull()
                t.column("delivered_at", .datetime)
                t.column("delivered_from", .text)
                t.column("hops", .jsonText).notNull()
            }
        }
        return migrator
    }

    // MARK: - The queue for the shared database

    /// Saves records and queues their hosts for the shared database, in one transaction.
    public func saveAndQueueForSharing(_ records: [VerdictRecord]) throws {
        try pool.write { db in
            for record in records {
                try record.save(db)
                try db.execute(sql: "INSERT OR IGNORE INTO shared_outbox (host) VALUES (?)", arguments: [record.host])
            }
        }
    }

    /// Up to `limit` queued records, as they are now (a host forgotten since is dropped from the queue).
    public func queuedForSharing(limit: Int) throws -> [VerdictRecord] {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM shared_outbox WHERE host NOT IN (SELECT host FROM verdict)")
            return try VerdictRecord.fetchAll(db, sql: """
                SELECT verdict.* FROM shared_outbox JOIN verdict USING (host) LIMIT ?
                """, arguments: [limit])
        }
    }

    /// Takes shared records off the queue, unless a later verdict replaced
    /// one of them meanwhile (that one stays queued).
    public func markShared(_ records: [VerdictRecord]) throws {
        try pool.write { db in
            for record in records {
                try db.execute(sql: """
                    DELETE FROM shared_outbox WHERE host = ?
                    AND NOT EXISTS (SELECT 1 FROM verdict WHERE host = ? AND tested_at > ?)
                    """, arguments: [record.host, record.host, record.testedAt])
            }
        }
    }

    public func queuedForSharingCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM shared_outbox") ?? 0 }
    }

    /// Adds counts to the rollups (minute or hour periods since the epoch); rows add up.
    public func addRollups(_ rows: [RollupRow]) throws {
        try pool.write { db in try Self.add(rows, db) }
    }

    private static func add(_ rows: [RollupRow], _ db: Database) throws {
        for row in rows {
            try db.execute(sql: """
                INSERT INTO stats_rollup (granularity, period, action, reason, count) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (granularity, period, action, reason) DO UPDATE SET count = count + excluded.count
                """, arguments: [row.granularity.rawValue, row.period, row.action, row.reason, row.count])
        }
    }

    public func rollups(_ granularity: RollupRow.Granularity, since period: Int) throws -> [RollupRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT period, action, reason, count FROM stats_rollup WHERE granularity = ? AND period >= ? ORDER BY period
                """, arguments: [granularity.rawValue, period]).map {
                RollupRow(granularity: granularity, period: $0[0], action: $0[1], reason: $0[2], count: $0[3])
            }
        }
    }

    /// Deletes rollups older than `period`; returns how many rows went.
    @discardableResult
    public func pruneRollups(_ granularity: RollupRow.Granularity, before period: Int) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM stats_rollup WHERE granularity = ? AND period < ?", arguments: [granularity.rawValue, period])
            return db.changesCount
        }
    }

    /// SQLite's `data_version` on the writing connection: it changes when
    /// another connection (another process: a `relay-milter cache` command,
    /// a second daemon) commits, never for this one's own writes.
    public func commitsElsewhere() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }

    public func all() throws -> [VerdictRecord] {
        try pool.read { db in try VerdictRecord.order(VerdictRecord.Columns.host).fetchAll(db) }
    }

    /// Streams every host's summary, for loading the in-memory index at start.
    /// Rows are read directly, without decoding whole records: a million
    /// hosts load in seconds, not minutes.
    public func forEachSummary(_ body: (String, VerdictSummary) throws -> Void) throws {
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT host, verdict, tested_at, expires_at, json_array_length(accepted_tests), tests_run, source FROM verdict
                """)
            while let row = try rows.next() {
                // A verdict this release does not know (a newer one wrote it) is left out: the host is tested again.
                guard let verdict = ProbeVerdict(rawValue: row[1]) else { continue }
                // A source this release does not know claims no more than a record from elsewhere.
                let source = VerdictRecord.Source(rawValue: row[6]) ?? .import
                try body(row[0], VerdictSummary(verdict: verdict, testedAt: row[2], expiresAt: row[3], acceptedCount: row[4], testsRun: row[5],
                                                source: source))
            }
        }
    }

    public func records(verdict: String?) throws -> [VerdictRecord] {
        try pool.read { db in
            var request = VerdictRecord.order(VerdictRecord.Columns.testedAt.desc)
            if let verdict { request = request.filter(VerdictRecord.Columns.verdict == verdict) }
            return try request.fetchAll(db)
        }
    }

    public func record(for host: String) throws -> VerdictRecord? {
        try pool.read { db in try VerdictRecord.fetchOne(db, key: host) }
    }

    /// Saves many records in one transaction (imports, benchmarks).
    public func saveAll(_ records: [VerdictRecord]) throws {
        try pool.write { db in for record in records { try record.save(db) } }
    }

    public func save(_ record: VerdictRecord) throws {
        try pool.write { db in try record.save(db) }
    }

    /// Removes a host; false if it was not there.
    @discardableResult
    public func forget(_ host: String) throws -> Bool {
        try pool.write { db in try VerdictRecord.deleteOne(db, key: host) }
    }

    /// Removes every record expired at `now`; returns how many.
    public func purgeExpired(at now: Date) throws -> Int {
        try pool.write { db in try VerdictRecord.filter(VerdictRecord.Columns.expiresAt <= now).deleteAll(db) }
    }
}
