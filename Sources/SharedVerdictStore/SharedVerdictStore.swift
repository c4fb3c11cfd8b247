#if PostgreSQL
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import VerdictStore

/// Verdict records, test claims and statistics rollups in a PostgreSQL
/// database that several relay-milter instances share.
///
/// One value is one connection. It knows nothing about probes or milters:
/// the daemon decides when to connect, what to write and what to do when the
/// server is away. Every call may throw when the connection is lost; the
/// caller then closes this value and connects anew.
public final class SharedVerdictStore: Sendable {
    public let instance: String
    private let connection: PostgresConnection
    private let queryTimeout: Duration
    private let logger: Logger

    private init(connection: PostgresConnection, instance: String, queryTimeout: Duration, logger: Logger) {
        self.connection = connection
        self.instance = instance
        self.queryTimeout = queryTimeout
        self.logger = logger
    }

    /// Connects and logs in; `instance` names this relay-milter in the rows it
    /// writes. A query not answered in `queryTimeout` (the config's
    /// `query_timeout`, so no default here) closes the connection (see `query`).
    public static func connect(
        to endpoint: Endpoint, instance: String, eventLoop: any EventLoop, connectTimeoutSeconds: Int64 = 5,
        queryTimeout: Duration, logger: Logger
    ) async throws -> SharedVerdictStore {
        var configuration = PostgresConnection.Configuration(
            host: endpoint.host, port: endpoint.port, username: endpoint.user, password: endpoint.password,
            database: endpoint.database, tls: try tls(endpoint.tls, caFile: endpoint.caFile)
        )
        configuration.options.connectTimeout = .seconds(connectTimeoutSeconds)
        let connection = try await PostgresConnection.connect(on: eventLoop, configuration: configuration, id: 1, logger: logger)
        return SharedVerdictStore(connection: connection, instance: instance, queryTimeout: queryTimeout, logger: logger)
    }

    /// NIOSSL's client configuration verifies the certificate chain and the
    /// host name (full verification); `caFile` replaces the system's roots.
    private static func tls(_ mode: TLSMode, caFile: String?) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile { configuration.trustRoots = .file(caFile) }
        switch mode {
        case .disable: return .disable
        case .prefer: return .prefer(try NIOSSLContext(configuration: configuration))
        case .require: return .require(try NIOSSLContext(configuration: configuration))
        }
    }

    public func close() async {
        try? await connection.close()
    }

    /// Runs `query` and returns its rows, all of them (a batch is a few
    /// hundred rows at most).
    ///
    /// Every query goes through here, because postgres-nio (1.33) loses a
    /// query written to a connection that has already closed: the write fails
    /// with no one told and the query never returns. Seen here: a query
    /// written a second after `pg_ctl stop` was still pending 5 s later; that
    /// fits how a fleet test's sync loop stalled in CI (inferred from its
    /// log, not caught in the act). So the check and the
    /// write happen together on the connection's event loop, where the close
    /// happens too: a query either starts on an open connection (and fails
    /// with it, should it close) or is refused here. (LISTEN needs no such
    /// care: postgres-nio fails a listener whose write finds the connection
    /// closed.)
    ///
    /// A server that stops answering without closing (a link that drops
    /// packets sends no reset) would hold a query until TCP gives up, about a
    /// quarter of an hour, and a test waiting on its claim with it. So a query
    /// not answered in `queryTimeout` closes the connection, which fails it;
    /// the caller connects anew.
    private func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let connection = connection, logger = logger, timeout = queryTimeout
        let loop = connection.eventLoop
        return try await loop.flatSubmit {
            guard !connection.isClosed else {
                return loop.makeFailedFuture(Failure.connectionClosed)
            }
            let timedOut = NIOLoopBoundBox(false, eventLoop: loop)
            let deadline = loop.scheduleTask(in: TimeAmount(timeout)) {
                timedOut.value = true
                let _: EventLoopFuture<Void> = connection.close() // fails the query
            }
            return connection.query(query, logger: logger).map(\.rows)
                .flatMapErrorThrowing { error in throw timedOut.value ? Failure.noAnswer(within: timeout) : error }
                .always { _ in deadline.cancel() }
        }.get()
    }

    /// `body` in one transaction, its queries through `query`.
    private func inTransaction<Value>(_ body: () async throws -> Value) async throws -> Value {
        _ = try await query("BEGIN")
        let value: Value
        do {
            value = try await body()
        } catch {
            _ = try? await query("ROLLBACK")
            throw error
        }
        _ = try await query("COMMIT")
        return value
    }

    // MARK: - Schema

    /// Brings the schema up to date; returns the versions before and after.
    @discardableResult
    public func migrate() async throws -> (from: Int, to: Int) {
        try await inTransaction {
            _ = try await query("SELECT pg_advisory_xact_lock(\(SharedSchema.migrationLock))")
            _ = try await query("""
                CREATE TABLE IF NOT EXISTS relay_milter_schema (
                    version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let current = try await query("SELECT coalesce(max(version), 0) FROM relay_milter_schema")
                .first?.decode(Int.self) ?? 0
            guard current <= SharedSchema.latestVersion else {
                throw Failure.schemaTooNew(found: current, known: SharedSchema.latestVersion)
            }
            for step in SharedSchema.steps where step.version > current {
                for statement in step.statements {
                    _ = try await query(PostgresQuery(unsafeSQL: statement))
                }
                _ = try await query("INSERT INTO relay_milter_schema (version) VALUES (\(step.version))")
            }
            return (current, SharedSchema.latestVersion)
        }
    }

    // MARK: - Verdicts

    /// Writes records; a host's row changes only for a later test than the
    /// one it holds, so writing the same record twice changes nothing.
    /// Returns how many rows changed.
    @discardableResult
    public func upsert(_ records: [VerdictRecord]) async throws -> Int {
        // One row per host: ON CONFLICT may not touch a row twice in one statement.
        var latest: [String: VerdictRecord] = [:]
        for record in records where (latest[record.host]?.testedAt ?? .distantPast) < record.testedAt {
            latest[record.host] = record
        }
        guard !latest.isEmpty else { return 0 }
        let rows = Array(latest.values)
        let hosts = rows.map(\.host), verdicts = rows.map(\.verdict)
        let testedAt = rows.map(\.testedAt), expiresAt = rows.map(\.expiresAt)
        let accepted = rows.map { $0.acceptedTests.joined(separator: Self.testSeparator) }
        let testsRun = rows.map(\.testsRun), banners = rows.map(\.banner), details = rows.map(\.detail)
        let sources = rows.map(\.source.rawValue)
        return try await query("""
            INSERT INTO relay_milter_verdict AS v
                (host, verdict, tested_at, expires_at, accepted_tests, tests_run, banner, detail, source, instance)
            SELECT host, verdict, tested_at, expires_at, string_to_array(accepted, E'\\x1f'), tests_run, banner, detail, source,
                   \(instance)
            FROM unnest(\(hosts)::text[], \(verdicts)::text[], \(testedAt)::timestamptz[], \(expiresAt)::timestamptz[],
                        \(accepted)::text[], \(testsRun)::bigint[], \(banners)::text[], \(details)::text[], \(sources)::text[])
                AS r(host, verdict, tested_at, expires_at, accepted, tests_run, banner, detail, source)
            ON CONFLICT (host) DO UPDATE SET
                verdict = EXCLUDED.verdict, tested_at = EXCLUDED.tested_at, expires_at = EXCLUDED.expires_at,
                accepted_tests = EXCLUDED.accepted_tests, tests_run = EXCLUDED.tests_run, banner = EXCLUDED.banner,
                detail = EXCLUDED.detail, source = EXCLUDED.source, instance = EXCLUDED.instance,
                change_id = nextval('relay_milter_verdict_change')
            WHERE v.tested_at < EXCLUDED.tested_at
            RETURNING 1
            """).count
    }

    /// Test names never hold a control character; the unit separator joins them for `unnest`.
    private static let testSeparator = "\u{1F}"

    /// Changes after `id`, oldest first.
    public func changes(after id: Int64, limit: Int) async throws -> [Change] {
        try await query("""
            SELECT change_id, host, verdict, tested_at, expires_at, accepted_tests, tests_run, banner, detail, source, instance
            FROM relay_milter_verdict WHERE change_id > \(id) ORDER BY change_id LIMIT \(limit)
            """).map { row in
            let (changeID, host, verdict, testedAt, expiresAt, accepted, testsRun, banner, detail, source, instance) = try row.decode(
                (Int64, String, String, Date, Date, [String], Int, String, String, String, String).self
            )
            let record = VerdictRecord(
                host: host, verdict: verdict, testedAt: testedAt, expiresAt: expiresAt, acceptedTests: accepted,
                testsRun: testsRun, banner: banner, detail: detail, source: VerdictRecord.Source(rawValue: source) ?? .import
            )
            return Change(id: changeID, record: record, instance: instance)
        }
    }

    /// Calls `body` for each notification that verdicts changed, until the
    /// connection ends (then it throws) or the task is cancelled.
    public func onEachVerdictChange(_ body: @Sendable () -> Void) async throws {
        try await connection.listen(on: SharedSchema.verdictChannel) { notifications in
            for try await _ in notifications { body() }
        }
    }

    // MARK: - Test claims

    /// Asks to be the one instance that tests `host`, for `seconds` at most:
    /// a claim an instance does not release (it crashed) lapses then.
    public func claimTest(of host: String, forSeconds seconds: Int) async throws -> Claim {
        let claimed = try await !query("""
            INSERT INTO relay_milter_test_claim AS c (host, instance, expires_at)
            VALUES (\(host), \(instance), now() + make_interval(secs => \(Double(seconds))))
            ON CONFLICT (host) DO UPDATE SET instance = EXCLUDED.instance, expires_at = EXCLUDED.expires_at
            WHERE c.expires_at <= now() OR c.instance = EXCLUDED.instance
            RETURNING 1
            """).isEmpty
        guard claimed else {
            let holder = try await query("SELECT instance FROM relay_milter_test_claim WHERE host = \(host)")
                .first?.decode(String.self) ?? ""
            return .heldBy(instance: holder)
        }
        // Checked after claiming: an instance writes its verdict before it
        // releases its claim, so a test that just ended is seen here.
        if let known = try await unexpiredRecord(for: host) {
            try await releaseClaim(on: host)
            return .known(known)
        }
        return .claimed
    }

    public func releaseClaim(on host: String) async throws {
        _ = try await query("DELETE FROM relay_milter_test_claim WHERE host = \(host) AND instance = \(instance)")
    }

    private func unexpiredRecord(for host: String) async throws -> VerdictRecord? {
        try await query("""
            SELECT verdict, tested_at, expires_at, accepted_tests, tests_run, banner, detail, source
            FROM relay_milter_verdict WHERE host = \(host) AND expires_at > now()
            """).first.map { row in
            let (verdict, testedAt, expiresAt, accepted, testsRun, banner, detail, source) = try row.decode(
                (String, Date, Date, [String], Int, String, String, String).self
            )
            return VerdictRecord(
                host: host, verdict: verdict, testedAt: testedAt, expiresAt: expiresAt, acceptedTests: accepted,
                testsRun: testsRun, banner: banner, detail: detail, source: VerdictRecord.Source(rawValue: source) ?? .import
            )
        }
    }

    // MARK: - Registered tests

    /// Writes copies of tests: a test not here is added, one here changes
    /// only to a state further on (`State.progress`), so instances writing
    /// the same test in any order agree. The `instance` is the one that
    /// wrote the test first.
    public func shareRegisteredTests(_ records: [RegisteredTestRecord]) async throws {
        for record in records {
            _ = try await query("""
                INSERT INTO relay_milter_registered_test AS t
                    (token, host, port, alias, created_at, expires_at, state, sent_reply, delivered_at, delivered_from, hops, instance)
                VALUES (\(record.token), \(record.host), \(record.port), \(record.alias), \(record.createdAt), \(record.expiresAt),
                        \(record.state.rawValue), \(record.sentReply), \(record.deliveredAt), \(record.deliveredFrom), \(record.hops),
                        \(instance))
                ON CONFLICT (token) DO UPDATE SET
                    state = EXCLUDED.state, sent_reply = EXCLUDED.sent_reply, delivered_at = EXCLUDED.delivered_at,
                    delivered_from = EXCLUDED.delivered_from, hops = EXCLUDED.hops
                WHERE \(unescaped: Self.progress("t.state")) < \(unescaped: Self.progress("EXCLUDED.state"))
                """)
        }
    }

    /// `State.progress` in SQL, made from the Swift one so that the two cannot differ.
    private static func progress(_ column: String) -> String {
        "CASE \(column) " + RegisteredTestRecord.State.allCases.map { "WHEN '\($0.rawValue)' THEN \($0.progress) " }.joined() + "END"
    }

    /// The tests whose windows end after `date`.
    public func registeredTests(endingAfter date: Date) async throws -> [RegisteredTestRecord] {
        try await query("""
            SELECT \(unescaped: Self.registeredColumns) FROM relay_milter_registered_test WHERE expires_at > \(date)
            """).map(Self.registeredTest)
    }

    /// Ends the windows that passed with no arrival, once for the whole
    /// fleet: a message taken becomes `undelivered`, one never handed over
    /// `lapsed`. Returns the tests this call made `undelivered`; another
    /// instance calling at the same time gets none of them.
    public func closeRegisteredWindows(at now: Date) async throws -> [RegisteredTestRecord] {
        try await query("""
            UPDATE relay_milter_registered_test
            SET state = CASE state WHEN 'waiting' THEN 'undelivered' ELSE 'lapsed' END
            WHERE state IN ('sending', 'waiting') AND expires_at <= \(now)
            RETURNING \(unescaped: Self.registeredColumns)
            """).map(Self.registeredTest).filter { $0.state == .undelivered }
    }

    private static let registeredColumns =
        "token, host, port, alias, created_at, expires_at, state, sent_reply, delivered_at, delivered_from, hops"

    private static func registeredTest(_ row: PostgresRow) throws -> RegisteredTestRecord {
        let (token, host, port, alias, createdAt, expiresAt, state, sentReply, deliveredAt, deliveredFrom, hops) = try row.decode(
            (String, String, Int, String, Date, Date, String, String, Date?, String?, [String]).self
        )
        return RegisteredTestRecord(
            token: token, host: host, port: port, alias: alias, createdAt: createdAt, expiresAt: expiresAt,
            // A state a newer relay-milter wrote is read as settled: nothing here acts on it.
            state: RegisteredTestRecord.State(rawValue: state) ?? .lapsed, sentReply: sentReply, deliveredAt: deliveredAt,
            deliveredFrom: deliveredFrom, hops: hops
        )
    }

    // MARK: - Statistics rollups

    /// Sets this instance's counts for the periods given (not adding to them:
    /// the instance's own database holds the totals, so writing a period
    /// again after an outage is harmless).
    public func setRollups(_ rows: [RollupRow]) async throws {
        guard !rows.isEmpty else { return }
        _ = try await query("""
            INSERT INTO relay_milter_stats_rollup (instance, granularity, period, action, reason, count)
            SELECT \(instance), g, p, a, r, c
            FROM unnest(\(rows.map(\.granularity.rawValue))::text[], \(rows.map(\.period))::bigint[],
                        \(rows.map(\.action))::text[], \(rows.map(\.reason))::text[], \(rows.map(\.count))::bigint[])
                AS x(g, p, a, r, c)
            ON CONFLICT (instance, granularity, period, action, reason) DO UPDATE SET count = EXCLUDED.count
            """)
    }

    /// Deletes this instance's rollups older than `period`.
    public func pruneRollups(_ granularity: RollupRow.Granularity, before period: Int) async throws {
        _ = try await query("""
            DELETE FROM relay_milter_stats_rollup
            WHERE instance = \(instance) AND granularity = \(granularity.rawValue) AND period < \(period)
            """)
    }

    /// Every instance's rollups since `period`, with the instance that wrote them.
    public func fleetRollups(_ granularity: RollupRow.Granularity, since period: Int) async throws -> [(instance: String, row: RollupRow)] {
        try await query("""
            SELECT instance, period, action, reason, count FROM relay_milter_stats_rollup
            WHERE granularity = \(granularity.rawValue) AND period >= \(period) ORDER BY instance, period
            """).map { row in
            let (instance, period, action, reason, count) = try row.decode((String, Int, String, String, Int).self)
            return (instance, RollupRow(granularity: granularity, period: period, action: action, reason: reason, count: count))
        }
    }
}
#endif
