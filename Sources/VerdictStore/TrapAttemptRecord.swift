import Foundation
import GRDB

/// One relay attempt taken by the trap listener: who tried, from where, for
/// which targets, and a fingerprint of what they sent, never the message.
/// Every text is cut to a bound before it gets here (`TrapAttemptRecord.limits`).
public struct TrapAttemptRecord: Sendable, Equatable, Codable {
    /// Assigned by the database, in order of arrival; nil before the insert.
    public var id: Int64?
    public var at: Date
    /// The client's address, in canonical text form.
    public var client: String
    public var helo: String
    public var sender: String
    /// How many recipients the attempt named (all of them, counted).
    public var recipientCount: Int
    /// Their domains, distinct, in order, at most `limits.domains`.
    public var recipientDomains: [String]
    /// Header and body bytes as the MTA passed them on.
    public var size: Int
    public var subject: String
    public var messageID: String
    /// SHA-256 of the body as the MTA passed it on, hex.
    public var bodySHA256: String
    /// The MTA's queue id, to find the attempt in its log.
    public var queueID: String

    /// The columns as stored.
    enum CodingKeys: String, CodingKey {
        case id, at, client, helo, sender, size, subject
        case recipientCount = "recipient_count", recipientDomains = "recipient_domains"
        case messageID = "message_id", bodySHA256 = "body_sha256", queueID = "queue_id"
    }

    /// How much of each field is kept: enough to recognise a campaign, never
    /// enough to keep the message.
    public enum Limits {
        public static let text = 200
        public static let domains = 20
    }

    public init(id: Int64? = nil, at: Date, client: String, helo: String, sender: String, recipientCount: Int,
                recipientDomains: [String], size: Int, subject: String, messageID: String, bodySHA256: String, queueID: String) {
        self.id = id
        self.at = at
        self.client = client
        self.helo = helo
        self.sender = sender
        self.recipientCount = recipientCount
        self.recipientDomains = recipientDomains
        self.size = size
        self.subject = subject
        self.messageID = messageID
        self.bodySHA256 = bodySHA256
        self.queueID = queueID
    }
}

extension TrapAttemptRecord: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "trap_attempt"

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

extension VerdictStore {
    /// Records a trapped attempt and the client's verdict in one transaction
    /// (the verdict queued for the fleet's shared database if asked), then
    /// drops the records beyond `retention` (seconds) and `maxRecords`;
    /// returns the attempt as stored (its id set).
    public func recordTrapAttempt(_ attempt: TrapAttemptRecord, verdict: VerdictRecord?, queueForSharing: Bool = false,
                                  retention: Int, maxRecords: Int) throws -> TrapAttemptRecord {
        try pool.write { db in
            var stored = attempt
            try stored.insert(db)
            if let verdict {
                try verdict.save(db)
                if queueForSharing { try db.execute(sql: "INSERT OR IGNORE INTO shared_outbox (host) VALUES (?)", arguments: [verdict.host]) }
            }
            try db.execute(sql: "DELETE FROM trap_attempt WHERE at < ?", arguments: [attempt.at.addingTimeInterval(-Double(retention))])
            if let id = stored.id, id > Int64(maxRecords) {
                try db.execute(sql: "DELETE FROM trap_attempt WHERE id <= ?", arguments: [id - Int64(maxRecords)])
            }
            return stored
        }
    }

    /// The newest attempts first, at most `limit`, optionally of one client and since a time.
    public func trapAttempts(client: String? = nil, since: Date? = nil, limit: Int = .max) throws -> [TrapAttemptRecord] {
        try pool.read { db in
            var request = TrapAttemptRecord.order(Column("id").desc)
            if let client { request = request.filter(Column("client") == client) }
            if let since { request = request.filter(Column("at") >= since) }
            return try request.limit(limit).fetchAll(db)
        }
    }

    public func trapAttempt(id: Int64) throws -> TrapAttemptRecord? {
        try pool.read { db in try TrapAttemptRecord.fetchOne(db, key: id) }
    }

    public func trapAttemptCount() throws -> Int {
        try pool.read { db in try TrapAttemptRecord.fetchCount(db) }
    }
}
