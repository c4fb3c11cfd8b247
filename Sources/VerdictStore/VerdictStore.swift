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
        migrator.registerMigration("v5: verdict changes") { db in
            // Every change to a verdict row, numbered, so that a daemon reads
            // only the hosts another process changed (`verdictChanges(after:)`)
            // instead of the whole table. Triggers, so that every writer logs,
            // a release that predates the log included. The log keeps the last
            // `changeLogLength` changes; a reader further behind reads everything.
            try db.execute(sql: """
                CREATE TABLE verdict_change (seq INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL);
                CREATE TRIGGER verdict_change_after_insert AFTER INSERT ON verdict
                BEGIN INSERT INTO verdict_change (host) VALUES (NEW.host); END;
                CREATE TRIGGER verdict_change_after_update AFTER UPDATE ON verdict
                BEGIN
                    INSERT INTO verdict_change (host) VALUES (NEW.host);
                    INSERT INTO verdict_change (host) SELECT OLD.host WHERE OLD.host IS NOT NEW.host;
                END;
                CREATE TRIGGER verdict_change_after_delete AFTER DELETE ON verdict
                BEGIN INSERT INTO verdict_change (host) VALUES (OLD.host); END;
                CREATE TRIGGER verdict_change_bounded AFTER INSERT ON verdict_change
                BEGIN DELETE FROM verdict_change WHERE seq <= NEW.seq - \(Self.changeLogLength); END;
                """)
        }
        migrator.registerMigration("v6: trap attempts") { db in
            // The trap listener's evidence (issue 35), bounded by
            // `recordTrapAttempt`'s retention. AUTOINCREMENT: ids never come
            // back after the oldest rows go, so a count bound is an id range.
            try db.create(table: TrapAttemptRecord.databaseTableName) { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull().indexed()
                t.column("client", .text).notNull().indexed()
                t.column("helo", .text).notNull()
                t.column("sender", .text).notNull()
                t.column("recipient_count", .integer).notNull()
                t.column("recipient_domains", .jsonText).notNull()
                t.column("size", .integer).notNull()
                t.column("subject", .text).notNull()
                t.column("message_id", .text).notNull()
                t.column("body_sha256", .text).notNull()
                t.column("queue_id", .text).notNull()
            }
        }
        return migrator
    }

    /// How many changes the log keeps: more than a daemon sees between two
    /// checks (10 s) but for a bulk load, after which reading everything is
    /// the cheaper way anyway.
    public static let changeLogLength = 100_000

    // MARK: - The queue for the shared database

    /// Saves records and queues their hosts for the shared database, in one transaction.
    public func saveAndQueueForSharing(_ records: [VerdictRecord]) throws {
        try pool.write { db in
            for record in records {
                try record.save(db)
                try Self.queueForSharing(record.host, db)
            }
        }
    }

    /// Queues a host whose verdict was just saved in `db`'s transaction.
    static func queueForSharing(_ host: String, _ db: Database) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO shared_outbox (host) VALUES (?)", arguments: [host])
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

    /// The hosts whose verdict changed after change number `after`, each as it
    /// is now, and the number of the last change read; nil when the log no
    /// longer reaches back that far (read everything with `forEachSummary`).
    public func verdictChanges(after: Int) throws -> VerdictChanges? {
        try pool.read { db in
            let through = try Self.lastChange(db)
            guard through > after else { return VerdictChanges(through: through, hosts: []) }
            let oldest = try Int.fetchOne(db, sql: "SELECT min(seq) FROM verdict_change") ?? through + 1
            guard oldest <= after + 1 else { return nil }
            let rows = try Row.fetchCursor(db, sql: """
                SELECT changed.host, verdict, tested_at, expires_at, json_array_length(accepted_tests), tests_run, source
                FROM (SELECT DISTINCT host FROM verdict_change WHERE seq > ? AND seq <= ?) AS changed
                LEFT JOIN verdict USING (host)
                """, arguments: [after, through])
            var hosts: [(host: String, summary: VerdictSummary?)] = []
            while let row = try rows.next() { hosts.append((row[0], Self.summary(row))) }
            return VerdictChanges(through: through, hosts: hosts)
        }
    }

    /// The number of the last change to a verdict (see `verdictChanges`).
    public func lastVerdictChange() throws -> Int {
        try pool.read(Self.lastChange)
    }

    /// The number of the last change logged (0 before any, and in a database
    /// an earlier release left unmigrated).
    private static func lastChange(_ db: Database) throws -> Int {
        guard try db.tableExists("verdict_change") else { return 0 }
        return try Int.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'verdict_change'") ?? 0
    }

    /// A summary from the columns `forEachSummary` and `verdictChanges` select
    /// (from column 1); nil for no row, or a verdict this release does not know
    /// (a newer one wrote it): the host is tested again.
    private static func summary(_ row: Row) -> VerdictSummary? {
        guard let text: String = row[1], let verdict = ProbeVerdict(rawValue: text) else { return nil }
        // A source this release does not know claims no more than a record from elsewhere.
        let source = VerdictRecord.Source(rawValue: row[6]) ?? .import
        return VerdictSummary(verdict: verdict, testedAt: row[2], expiresAt: row[3], acceptedCount: row[4], testsRun: row[5], source: source)
    }

    public func all() throws -> [VerdictRecord] {
        try pool.read { db in try VerdictRecord.order(VerdictRecord.Columns.host).fetchAll(db) }
    }

    /// Streams every host's summary, for loading the in-memory index, and
    /// returns the number of the last change the read includes (see
    /// `verdictChanges`). Rows are read directly, without decoding whole
    /// records: a million hosts load in seconds, not minutes.
    @discardableResult
    public func forEachSummary(_ body: (String, VerdictSummary) throws -> Void) throws -> Int {
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT host, verdict, tested_at, expires_at, json_array_length(accepted_tests), tests_run, source FROM verdict
                """)
            while let row = try rows.next() {
                guard let summary = Self.summary(row) else { continue }
                try body(row[0], summary)
            }
            return try Self.lastChange(db)
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
