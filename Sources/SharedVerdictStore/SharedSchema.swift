/// The tables a fleet shares, created and migrated by relay-milter itself.
///
/// Each step runs once, in order, inside a transaction that holds an advisory
/// lock, so instances starting together migrate one after the other and the
/// later ones find the work done. `relay_milter_schema` records the steps
/// applied; an instance refuses a database migrated past what it knows (a
/// newer relay-milter elsewhere in the fleet), rather than guess.
enum SharedSchema {
    /// Any constant will do: it only has to be the same in every instance.
    static let migrationLock: Int64 = 0x7265_6C61_795F_6D69 // "relay_mi"

    /// The channel a trigger notifies on each verdict change.
    static let verdictChannel = "relay_milter_verdicts"

    static let steps: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE SEQUENCE relay_milter_verdict_change
            """,
            """
            CREATE TABLE relay_milter_verdict (
                host text PRIMARY KEY,
                verdict text NOT NULL,
                tested_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL,
                accepted_tests text[] NOT NULL,
                tests_run integer NOT NULL,
                banner text NOT NULL,
                detail text NOT NULL,
                source text NOT NULL,
                instance text NOT NULL,
                change_id bigint NOT NULL DEFAULT nextval('relay_milter_verdict_change')
            )
            """,
            "CREATE INDEX relay_milter_verdict_change_idx ON relay_milter_verdict (change_id)",
            """
            CREATE FUNCTION relay_milter_verdict_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('\(verdictChannel)', '');
                RETURN NULL;
            END $$
            """,
            """
            CREATE TRIGGER relay_milter_verdict_changed AFTER INSERT OR UPDATE ON relay_milter_verdict
            FOR EACH STATEMENT EXECUTE FUNCTION relay_milter_verdict_notify()
            """,
            """
            CREATE TABLE relay_milter_test_claim (
                host text PRIMARY KEY,
                instance text NOT NULL,
                expires_at timestamptz NOT NULL
            )
            """,
            """
            CREATE TABLE relay_milter_stats_rollup (
                instance text NOT NULL,
                granularity text NOT NULL,
                period bigint NOT NULL,
                action text NOT NULL,
                reason text NOT NULL,
                count bigint NOT NULL,
                PRIMARY KEY (instance, granularity, period, action, reason)
            )
            """,
        ]),
        // Registered tests, so that a test message may come back through any
        // instance of the fleet. Changes notify the verdicts' channel (a
        // notification only starts an exchange, which carries both), per row:
        // a write that changes nothing must not wake the fleet, or exchanges
        // would wake each other for ever.
        (2, [
            """
            CREATE TABLE relay_milter_registered_test (
                token text PRIMARY KEY,
                host text NOT NULL,
                port integer NOT NULL,
                alias text NOT NULL,
                created_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL,
                state text NOT NULL,
                sent_reply text NOT NULL,
                delivered_at timestamptz,
                delivered_from text,
                hops text[] NOT NULL,
                instance text NOT NULL
            )
            """,
            "CREATE INDEX relay_milter_registered_test_expires_idx ON relay_milter_registered_test (expires_at)",
            """
            CREATE TRIGGER relay_milter_registered_test_changed AFTER INSERT OR UPDATE ON relay_milter_registered_test
            FOR EACH ROW EXECUTE FUNCTION relay_milter_verdict_notify()
            """,
        ]),
    ]

    static var latestVersion: Int { steps.last?.version ?? 0 }
}
