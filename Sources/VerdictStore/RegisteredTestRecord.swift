import Foundation
import GRDB

/// One registered test: the one-time alias a message was relayed to through a
/// host the admin answers for, and what came of it.
public struct RegisteredTestRecord: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable, CaseIterable {
        /// The alias exists; the message is being handed to the host.
        case sending
        /// The host took the message; its arrival is awaited.
        case waiting
        /// It arrived back: the host relays.
        case delivered
        /// The host refused it: it does not relay this message.
        case refused
        /// The host took it and the window ended with no arrival: it accepts
        /// and then discards (anonymous mode's false positive).
        case undelivered
        /// Never handed over: the sending failed, or its window ended first.
        case lapsed

        /// How far a test has come: a state only ever gives way to one further
        /// on, so copies of a test (this instance's, the fleet's) merge to the
        /// same row whatever order they meet in. Settled states are final.
        public var progress: Int {
            switch self {
            case .sending: 0
            case .waiting: 1
            case .delivered, .refused, .undelivered, .lapsed: 2
            }
        }
    }

    /// The alias's token, unique and unguessable.
    public var token: String
    /// The host tested, in canonical text form.
    public var host: String
    public var port: Int
    /// The whole alias, `relay-check+token@example.org`.
    public var alias: String
    public var createdAt: Date
    /// The end of the window: an arrival after it is refused.
    public var expiresAt: Date
    public var state: State
    /// The host's reply to the message (or why it was not sent).
    public var sentReply: String
    public var deliveredAt: Date?
    /// The client that handed the message to our MTA.
    public var deliveredFrom: String?
    /// The Received chain's hops, newest first, as the message carried them.
    public var hops: [String]

    public init(token: String, host: String, port: Int, alias: String, createdAt: Date, expiresAt: Date,
                state: State = .sending, sentReply: String = "", deliveredAt: Date? = nil, deliveredFrom: String? = nil,
                hops: [String] = []) {
        self.token = token
        self.host = host
        self.port = port
        self.alias = alias
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.state = state
        self.sentReply = sentReply
        self.deliveredAt = deliveredAt
        self.deliveredFrom = deliveredFrom
        self.hops = hops
    }
}

extension RegisteredTestRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "registered_test"
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

/// What became of an arrival for an alias.
public enum RegisteredArrival: Sendable, Equatable {
    /// Recorded: the test's row as it is now.
    case recorded(RegisteredTestRecord)
    /// No test has this token: refused like any unknown recipient.
    case unknown
    /// Its window has ended, or it already arrived once: refused too.
    case closed(RegisteredTestRecord)
}

/// How many registered tests may start: per host in any 24 hours, and in
/// all in any hour (`[registered] max_per_host`, `max_per_hour`).
public struct RegisteredTestLimits: Sendable, Equatable {
    public var perHostPerDay: Int
    public var perHour: Int

    public init(perHostPerDay: Int, perHour: Int) {
        self.perHostPerDay = perHostPerDay
        self.perHour = perHour
    }
}

/// Whether a registered test could start.
public enum RegisteredTestAdmission: Sendable, Equatable {
    case started
    case hostLimitReached
    case hourLimitReached
}

extension VerdictStore {
    /// Makes the test's row unless a limit is reached. The counts and the
    /// insert are one transaction: `probe --registered` and the daemon, both
    /// starting tests, cannot both take the last one a limit allows.
    public func startRegisteredTest(_ record: RegisteredTestRecord, limits: RegisteredTestLimits) throws -> RegisteredTestAdmission {
        try pool.write { db in
            let ofHost = try RegisteredTestRecord
                .filter(Column("host") == record.host && Column("created_at") > record.createdAt.addingTimeInterval(-86400))
                .fetchCount(db)
            if ofHost >= limits.perHostPerDay { return .hostLimitReached }
            let ofHour = try RegisteredTestRecord.filter(Column("created_at") > record.createdAt.addingTimeInterval(-3600)).fetchCount(db)
            if ofHour >= limits.perHour { return .hourLimitReached }
            try record.insert(db)
            return .started
        }
    }

    public func registeredTest(token: String) throws -> RegisteredTestRecord? {
        try pool.read { db in try RegisteredTestRecord.fetchOne(db, key: token) }
    }

    /// The tests of one host, newest first.
    public func registeredTests(host: String) throws -> [RegisteredTestRecord] {
        try pool.read { db in
            try RegisteredTestRecord.filter(Column("host") == host).order(Column("created_at").desc).fetchAll(db)
        }
    }

    /// The tests whose windows end after `date`: those a fleet still
    /// exchanges.
    public func registeredTests(endingAfter date: Date) throws -> [RegisteredTestRecord] {
        try pool.read { db in try RegisteredTestRecord.filter(Column("expires_at") > date).fetchAll(db) }
    }

    /// Takes in copies of tests from elsewhere (the fleet's shared database):
    /// a test not known here is added, a known one changes only to a state
    /// further on (`State.progress`). Returns the tests that changed here.
    @discardableResult
    public func mergeRegisteredTests(_ records: [RegisteredTestRecord]) throws -> [RegisteredTestRecord] {
        try pool.write { db in
            var changed: [RegisteredTestRecord] = []
            for record in records {
                if let known = try RegisteredTestRecord.fetchOne(db, key: record.token), known.state.progress >= record.state.progress {
                    continue
                }
                try record.save(db)
                changed.append(record)
            }
            return changed
        }
    }

    /// The tests started since `date`, by state.
    public func registeredTestCounts(since date: Date) throws -> [RegisteredTestRecord.State: Int] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT state, COUNT(*) FROM registered_test WHERE created_at >= ? GROUP BY state",
                                        arguments: [date])
            var counts: [RegisteredTestRecord.State: Int] = [:]
            for row in rows {
                guard let state = RegisteredTestRecord.State(rawValue: row[0]) else { continue }
                counts[state] = row[1]
            }
            return counts
        }
    }

    /// Sets what the sending made of a test (`waiting`, `refused`, `lapsed`) and the host's reply.
    public func settleSending(token: String, state: RegisteredTestRecord.State, reply: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE registered_test SET state = ?, sent_reply = ? WHERE token = ? AND state = 'sending'",
                           arguments: [state.rawValue, reply, token])
        }
    }

    /// Records the message for `token` arriving at `now` from `client`: once,
    /// and only within the window of a test whose message was sent (or is
    /// being sent: a fast relay may deliver before the sender reads its reply).
    public func recordArrival(token: String, at now: Date, from client: String, hops: [String]) throws -> RegisteredArrival {
        try pool.write { db in
            guard var record = try RegisteredTestRecord.fetchOne(db, key: token) else { return .unknown }
            guard record.expiresAt > now, record.state == .sending || record.state == .waiting else { return .closed(record) }
            record.state = .delivered
            record.deliveredAt = now
            record.deliveredFrom = client
            record.hops = hops
            try record.update(db)
            return .recorded(record)
        }
    }

    /// Ends the windows that passed with no arrival: a message the host took
    /// is `undelivered`, one never handed over `lapsed`. Returns the tests
    /// that became `undelivered`, whose hosts get that verdict.
    public func closeRegisteredWindows(at now: Date) throws -> [RegisteredTestRecord] {
        try pool.write { db in
            try db.execute(sql: "UPDATE registered_test SET state = 'lapsed' WHERE state = 'sending' AND expires_at <= ?", arguments: [now])
            let undelivered = try RegisteredTestRecord.filter(Column("expires_at") <= now)
                .filter(Column("state") == RegisteredTestRecord.State.waiting.rawValue)
                .fetchAll(db)
                .map { record -> RegisteredTestRecord in
                    var record = record
                    record.state = .undelivered
                    return record
                }
            for record in undelivered { try record.update(db) }
            return undelivered
        }
    }
}
