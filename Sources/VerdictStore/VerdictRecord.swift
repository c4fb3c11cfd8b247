import Foundation
import GRDB
import RelayProbe

/// What is known about one host: the latest test result, or a manual listing.
/// The store keeps verdicts as text; what they mean is the caller's business.
public struct VerdictRecord: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable, CaseIterable {
        /// Found by our own open-relay test.
        case probe
        /// Set by an admin (`relay-milter cache set`).
        case manual
        /// Brought in from elsewhere.
        case `import`
        /// A registered test's message came back: relaying proven by delivery.
        case registered
        /// The host tried to relay through this site's trap listener.
        case trap
    }

    /// The host's address, in canonical text form.
    public var host: String
    public var verdict: String
    public var testedAt: Date
    public var expiresAt: Date
    /// Names of the tests the host failed (accepted the relay RCPT).
    public var acceptedTests: [String]
    /// How many tests ran.
    public var testsRun: Int
    /// The first banner line, short.
    public var banner: String
    public var detail: String
    public var source: Source

    public init(host: String, verdict: String, testedAt: Date, expiresAt: Date, acceptedTests: [String] = [],
                testsRun: Int = 0, banner: String = "", detail: String = "", source: Source) {
        self.host = host
        self.verdict = verdict
        self.testedAt = testedAt
        self.expiresAt = expiresAt
        self.acceptedTests = acceptedTests
        self.testsRun = testsRun
        self.banner = banner
        self.detail = detail
        self.source = source
    }

    public func isExpired(at now: Date) -> Bool { expiresAt <= now }
}

extension VerdictRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "verdict"

    /// Column names as stored (snake case, see the coding strategies below).
    public enum Columns {
        public static let host = Column("host")
        public static let verdict = Column("verdict")
        public static let expiresAt = Column("expires_at")
        public static let testedAt = Column("tested_at")
    }

    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

/// The part of a record the milter's connect path needs, small enough to keep
/// a million of in memory. The record keeps the verdict as the database
/// spells it (a newer release may have written one this release does not
/// know); the summary holds only verdicts it knows.
public struct VerdictSummary: Sendable, Equatable {
    public var verdict: ProbeVerdict
    public var testedAt: Date
    public var expiresAt: Date
    public var acceptedCount: Int
    public var testsRun: Int
    /// Who found it: the reply to a refused host says so.
    public var source: VerdictRecord.Source

    public init(verdict: ProbeVerdict, testedAt: Date, expiresAt: Date, acceptedCount: Int, testsRun: Int,
                source: VerdictRecord.Source = .probe) {
        self.verdict = verdict
        self.testedAt = testedAt
        self.expiresAt = expiresAt
        self.acceptedCount = acceptedCount
        self.testsRun = testsRun
        self.source = source
    }

    public func isExpired(at now: Date) -> Bool { expiresAt <= now }

    /// What the verdict rests on, as the refused host's reply says it:
    /// `20/20 anonymous relay tests accepted`, `listed by the administrator`.
    public var evidence: String {
        switch source {
        case .probe: "\(acceptedCount)/\(testsRun) anonymous relay tests accepted"
        case .manual: "listed by the administrator"
        case .import: "listed by an imported record"
        case .registered: "confirmed by delivery of a registered test message"
        case .trap: "caught relaying through a trap"
        }
    }
}

extension VerdictRecord {
    /// Nil for a verdict this release does not know: such a host counts as untested.
    public var summary: VerdictSummary? {
        ProbeVerdict(rawValue: verdict).map {
            VerdictSummary(verdict: $0, testedAt: testedAt, expiresAt: expiresAt, acceptedCount: acceptedTests.count, testsRun: testsRun,
                           source: source)
        }
    }
}

/// What changed in the verdict table after some change number: each host as
/// it is now (nil: gone, or a verdict this release does not know).
public struct VerdictChanges: Sendable {
    /// The number of the last change included.
    public var through: Int
    public var hosts: [(host: String, summary: VerdictSummary?)]

    public init(through: Int, hosts: [(host: String, summary: VerdictSummary?)]) {
        self.through = through
        self.hosts = hosts
    }
}

/// A count of decisions with one action and reason in one minute or hour.
public struct RollupRow: Sendable, Equatable {
    public enum Granularity: String, Sendable {
        case minute, hour
    }

    public var granularity: Granularity
    /// Minutes or hours since the Unix epoch.
    public var period: Int
    public var action: String
    public var reason: String
    public var count: Int

    public init(granularity: Granularity, period: Int, action: String, reason: String, count: Int) {
        self.granularity = granularity
        self.period = period
        self.action = action
        self.reason = reason
        self.count = count
    }
}
