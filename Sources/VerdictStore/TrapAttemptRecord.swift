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
                if queueForSharing { try Self.queueForSharing(verdict.host, db) }
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

/// The trap's evidence of a window, summed up for `relay-milter stats`.
public struct TrapSummary: Sendable, Equatable {
    public var attempts: Int
    /// Attempts per hour, oldest first, the last being the current hour.
    public var perHour: [Int]
    /// The most frequent clients and recipient domains, with their counts, most first.
    public var topClients: [(key: String, count: Int)]
    public var topDomains: [(key: String, count: Int)]

    public static func == (lhs: TrapSummary, rhs: TrapSummary) -> Bool {
        lhs.attempts == rhs.attempts && lhs.perHour == rhs.perHour
            && lhs.topClients.elementsEqual(rhs.topClients, by: ==) && lhs.topDomains.elementsEqual(rhs.topDomains, by: ==)
    }
}

extension VerdictStore {
    /// The attempts of the last `hours` hours before `now`, summed up: one read.
    public func trapSummary(hours: Int, top: Int, now: Date = Date()) throws -> TrapSummary {
        let nowHour = Int(now.timeIntervalSince1970) / 3600
        let since = Date(timeIntervalSince1970: TimeInterval((nowHour - hours + 1) * 3600))
        return try pool.read { db in
            var perHour = [Int](repeating: 0, count: hours)
            for row in try Row.fetchAll(db, sql: """
                SELECT CAST(strftime('%s', at) AS INTEGER) / 3600 AS hour, count(*) FROM trap_attempt WHERE at >= ? GROUP BY hour
                """, arguments: [since]) {
                let index = hours - 1 - (nowHour - (row[0] as Int))
                if perHour.indices.contains(index) { perHour[index] += row[1] as Int }
            }
            let clients = try Row.fetchAll(db, sql: """
                SELECT client, count(*) AS n FROM trap_attempt WHERE at >= ? GROUP BY client ORDER BY n DESC, client LIMIT ?
                """, arguments: [since, top]).map { (key: $0[0] as String, count: $0[1] as Int) }
            let domains = try Row.fetchAll(db, sql: """
                SELECT domain.value, count(*) AS n FROM trap_attempt, json_each(trap_attempt.recipient_domains) AS domain
                WHERE at >= ? GROUP BY domain.value ORDER BY n DESC, domain.value LIMIT ?
                """, arguments: [since, top]).map { (key: $0[0] as String, count: $0[1] as Int) }
            return TrapSummary(attempts: perHour.reduce(0, +), perHour: perHour, topClients: clients, topDomains: domains)
        }
    }
}
