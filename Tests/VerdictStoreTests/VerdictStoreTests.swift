import Foundation
import Testing
@testable import VerdictStore

struct VerdictStoreTests {
    /// A real SQLite file in a fresh temporary directory.
    static func freshPath() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("verdict-store-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("verdicts.sqlite").path
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func record(_ host: String, _ verdict: String, expiresIn: TimeInterval = 3600) -> VerdictRecord {
        VerdictRecord(host: host, verdict: verdict, testedAt: now, expiresAt: now.addingTimeInterval(expiresIn),
                      acceptedTests: verdict == "open" ? ["null sender", "bang path"] : [], testsRun: 20,
                      banner: "mx.example ESMTP", detail: "d", source: .probe)
    }

    @Test func savesReadsAndSurvivesReopening() throws {
        let path = VerdictStoreTests.freshPath()
        do {
            let store = try VerdictStore(path: path)
            try store.save(Self.record("192.0.2.1", "open"))
            try store.save(Self.record("2001:db8::1", "closed"))
        }
        let reopened = try VerdictStore(path: path)
        #expect(try reopened.all().map(\.host) == ["192.0.2.1", "2001:db8::1"])
        let open = try #require(try reopened.record(for: "192.0.2.1"))
        #expect(open == Self.record("192.0.2.1", "open"))
        #expect(try reopened.records(verdict: "closed").map(\.host) == ["2001:db8::1"])
    }

    /// How the daemon notices a `cache set` from another process: the count
    /// moves for another connection's commit, never for its own writes.
    @Test func commitsElsewhereMoveOnlyForAnotherConnection() throws {
        let path = Self.freshPath()
        let daemon = try VerdictStore(path: path)
        let before = try daemon.commitsElsewhere()
        try daemon.save(VerdictRecord(host: "192.0.2.1", verdict: "open", testedAt: Date(), expiresAt: Date().addingTimeInterval(60), source: .manual))
        #expect(try daemon.commitsElsewhere() == before)
        let command = try VerdictStore(path: path)
        try command.save(VerdictRecord(host: "192.0.2.2", verdict: "open", testedAt: Date(), expiresAt: Date().addingTimeInterval(60), source: .manual))
        #expect(try daemon.commitsElsewhere() != before)
    }

    /// What the daemon reads after another process's commit: the hosts changed
    /// since its last read, each as it is now (gone: nil), whoever wrote them.
    @Test func verdictChangesNameTheHostsChangedSinceARead() throws {
        let path = Self.freshPath()
        let daemon = try VerdictStore(path: path)
        try daemon.save(Self.record("192.0.2.1", "open"))
        try daemon.save(Self.record("192.0.2.2", "open"))
        let read = try daemon.forEachSummary { _, _ in }
        #expect(read == 2)
        let command = try VerdictStore(path: path)
        try command.save(Self.record("192.0.2.2", "closed"))
        try command.save(Self.record("192.0.2.3", "from-a-newer-release"))
        #expect(try command.forget("192.0.2.1"))
        #expect(try command.forget("192.0.2.9") == false)
        let changes = try #require(try daemon.verdictChanges(after: read))
        #expect(changes.through == 5)
        let byHost = Dictionary(uniqueKeysWithValues: changes.hosts.map { ($0.host, $0.summary?.verdict.rawValue ?? "gone") })
        // A verdict this release does not know reads as gone: the host is tested again.
        #expect(byHost == ["192.0.2.1": "gone", "192.0.2.2": "closed", "192.0.2.3": "gone"])
        #expect(try daemon.verdictChanges(after: changes.through)?.hosts.isEmpty == true)
    }

    /// A reader further behind than the log reaches is told to read everything.
    @Test func verdictChangesBeyondTheLogAskForAFullRead() throws {
        let store = try VerdictStore(path: Self.freshPath())
        let count = VerdictStore.changeLogLength + 10
        // One statement, so that the rows and their triggers run in SQLite
        // alone: Swift encoding 100,000 records took minutes under the sanitizers.
        try store.pool.write { db in
            try db.execute(sql: """
                WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                INSERT INTO verdict (host, verdict, tested_at, expires_at, accepted_tests, tests_run, banner, detail, source)
                SELECT '10.' || (i >> 16) || '.' || ((i >> 8) & 255) || '.' || (i & 255), 'open', ?, ?, '[]', 20, '', '', 'probe' FROM n
                """, arguments: [count - 1, Self.now, Self.now.addingTimeInterval(3600)])
        }
        #expect(try store.lastVerdictChange() == count)
        #expect(try store.verdictChanges(after: 0) == nil)
        #expect(try store.verdictChanges(after: 10)?.hosts.count == VerdictStore.changeLogLength)
    }

    @Test func saveReplacesTheHostsRecord() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        try store.save(Self.record("192.0.2.1", "open"))
        try store.save(Self.record("192.0.2.1", "closed"))
        #expect(try store.all().map(\.verdict) == ["closed"])
    }

    @Test func forgetAndPurge() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        try store.save(Self.record("192.0.2.1", "open", expiresIn: -1))
        try store.save(Self.record("192.0.2.2", "open", expiresIn: 60))
        try store.save(Self.record("192.0.2.3", "closed", expiresIn: 60))
        #expect(try store.forget("192.0.2.3"))
        #expect(try !store.forget("192.0.2.3"))
        #expect(try store.purgeExpired(at: Self.now) == 1)
        #expect(try store.all().map(\.host) == ["192.0.2.2"])
    }

    @Test func aDeletedFileIsNoticedAndWrittenBackWithEverything() throws {
        let path = VerdictStoreTests.freshPath()
        let store = try VerdictStore(path: path)
        try store.save(Self.record("192.0.2.1", "open"))
        #expect(store.fileAtPath == .same)
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        #expect(store.fileAtPath == .gone)
        try store.save(Self.record("192.0.2.2", "open")) // lands in the unlinked file
        let rewritten = try store.rewrittenToPath()
        #expect(rewritten.fileAtPath == .same)
        #expect(try VerdictStore(path: path).all().map(\.host) == ["192.0.2.1", "192.0.2.2"])
    }

    @Test func aReplacedFileIsNoticed() throws {
        let path = VerdictStoreTests.freshPath(), other = Self.freshPath()
        let store = try VerdictStore(path: path)
        try VerdictStore(path: other).save(Self.record("192.0.2.7", "closed"))
        #expect(rename(other, path) == 0)
        #expect(store.fileAtPath == .replaced)
    }

    @Test func aReadOnlySnapshotReadsTheVerdictsAndTakesNoWrites() throws {
        let path = VerdictStoreTests.freshPath()
        try VerdictStore(path: path).save(Self.record("192.0.2.1", "open"))
        let snapshot = try VerdictStore.openReadOnlySnapshot(path: path)
        #expect(try snapshot.all().map(\.host) == ["192.0.2.1"])
        #expect(snapshot.fileAtPath == .same)
        #expect(throws: (any Error).self) { try snapshot.save(Self.record("192.0.2.2", "open")) }
    }

    @Test func aReadOnlySnapshotRefusesWhatIsNotOurDatabase() throws {
        let missing = VerdictStoreTests.freshPath()
        #expect(throws: (any Error).self) { try VerdictStore.openReadOnlySnapshot(path: missing) }
        let foreign = VerdictStoreTests.freshPath() // an empty file is an empty SQLite database, without our schema
        #expect(FileManager.default.createFile(atPath: foreign, contents: Data()))
        #expect(throws: (any Error).self) { try VerdictStore.openReadOnlySnapshot(path: foreign) }
    }

    @Test func aSecondConnectionSeesWritesWhileTheFirstIsOpen() throws {
        let path = VerdictStoreTests.freshPath()
        let daemon = try VerdictStore(path: path)
        let cli = try VerdictStore(path: path)
        try daemon.save(Self.record("192.0.2.1", "open"))
        #expect(try cli.record(for: "192.0.2.1")?.verdict == "open")
        try cli.forget("192.0.2.1")
        #expect(try daemon.record(for: "192.0.2.1") == nil)
    }

    @Test func unwritableDirectoryIsAClearError() {
        #expect(throws: (any Error).self) { try VerdictStore(path: "/nonexistent/dir/verdicts.sqlite") }
    }
}

struct RollupTests {
    /// The queue for the fleet's shared database outlives a restart, and a
    /// verdict replaced while it was being shared stays queued.
    @Test func theSharingQueueSurvivesReopeningAndKeepsLaterVerdicts() throws {
        let path = VerdictStoreTests.freshPath()
        do {
            let store = try VerdictStore(path: path)
            try store.saveAndQueueForSharing([VerdictStoreTests.record("192.0.2.1", "open"), VerdictStoreTests.record("192.0.2.2", "closed")])
            try store.save(VerdictStoreTests.record("192.0.2.3", "closed")) // another instance's: not queued
        }
        let store = try VerdictStore(path: path)
        let queued = try store.queuedForSharing(limit: 10)
        #expect(Set(queued.map(\.host)) == ["192.0.2.1", "192.0.2.2"])
        #expect(queued.first { $0.host == "192.0.2.1" }?.acceptedTests == ["null sender", "bang path"])

        var retested = VerdictStoreTests.record("192.0.2.2", "open")
        retested.testedAt = VerdictStoreTests.now.addingTimeInterval(60)
        try store.saveAndQueueForSharing([retested])
        try store.markShared(queued)
        #expect(try store.queuedForSharing(limit: 10).map(\.verdict) == ["open"])
        #expect(try store.queuedForSharingCount() == 1)

        try store.forget("192.0.2.2")
        #expect(try store.queuedForSharing(limit: 10).isEmpty)
    }

    @Test func rollupsAddUpSurviveReopeningAndPrune() throws {
        let path = VerdictStoreTests.freshPath()
        do {
            let store = try VerdictStore(path: path)
            try store.addRollups([
                RollupRow(granularity: .minute, period: 100, action: "reject", reason: "relay.denied", count: 2),
                RollupRow(granularity: .minute, period: 101, action: "accept", reason: "relay.local_recipient", count: 1),
                RollupRow(granularity: .hour, period: 1, action: "reject", reason: "relay.denied", count: 2),
            ])
            try store.addRollups([RollupRow(granularity: .minute, period: 100, action: "reject", reason: "relay.denied", count: 3)])
        }
        let store = try VerdictStore(path: path)
        #expect(try store.rollups(.minute, since: 0) == [
            RollupRow(granularity: .minute, period: 100, action: "reject", reason: "relay.denied", count: 5),
            RollupRow(granularity: .minute, period: 101, action: "accept", reason: "relay.local_recipient", count: 1),
        ])
        #expect(try store.rollups(.minute, since: 101).count == 1)
        #expect(try store.rollups(.hour, since: 0).map(\.count) == [2])
        #expect(try store.pruneRollups(.minute, before: 101) == 1)
        #expect(try store.rollups(.minute, since: 0).map(\.period) == [101])
    }
}

struct TrapAttemptStoreTests {
    static func attempt(_ client: String, at time: Date) -> TrapAttemptRecord {
        TrapAttemptRecord(at: time, client: client, helo: "spam.example", sender: "a@spam.example", recipientCount: 3,
                          recipientDomains: ["victim.example", "other.example"], size: 1234, subject: "Buy", messageID: "<1@spam.example>",
                          bodySHA256: String(repeating: "ab", count: 32), queueID: "4ABC")
    }

    /// The attempt and the client's verdict land together; every field reads back.
    @Test func recordsAnAttemptWithItsVerdict() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        let now = VerdictStoreTests.now
        let verdict = VerdictRecord(host: "192.0.2.7", verdict: "trapped", testedAt: now, expiresAt: now.addingTimeInterval(60), source: .trap)
        let stored = try store.recordTrapAttempt(Self.attempt("192.0.2.7", at: now), verdict: verdict, retention: 3600, maxRecords: 100)
        #expect(stored.id == 1)
        #expect(try store.trapAttempt(id: 1) == stored)
        #expect(try store.record(for: "192.0.2.7") == verdict)
        #expect(try store.trapAttempts(client: "192.0.2.8").isEmpty)
    }

    /// Retention by age and by count: the oldest go, the newest stay.
    @Test func keepsWithinRetentionAndCount() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        let now = VerdictStoreTests.now
        _ = try store.recordTrapAttempt(Self.attempt("192.0.2.1", at: now.addingTimeInterval(-7200)), verdict: nil, retention: 3600, maxRecords: 5)
        for second in 0..<10 {
            _ = try store.recordTrapAttempt(Self.attempt("192.0.2.2", at: now.addingTimeInterval(Double(second))), verdict: nil, retention: 3600, maxRecords: 5)
        }
        let kept = try store.trapAttempts()
        #expect(kept.map(\.id) == [11, 10, 9, 8, 7])
        #expect(try store.trapAttemptCount() == 5)
        #expect(try store.trapAttempts(since: now.addingTimeInterval(8)).count == 2)
    }
}

extension TrapAttemptStoreTests {
    /// `stats`' view of the trap: per hour, the busiest clients and target domains.
    @Test func summarisesAWindow() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        let now = VerdictStoreTests.now // on the hour: 1_800_000_000 / 3600 = 500_000
        var early = Self.attempt("192.0.2.1", at: now.addingTimeInterval(-10)) // the hour before
        early.recipientDomains = ["victim.example"]
        for attempt in [early, Self.attempt("192.0.2.2", at: now.addingTimeInterval(5)), Self.attempt("192.0.2.2", at: now.addingTimeInterval(6)),
                        Self.attempt("192.0.2.3", at: now.addingTimeInterval(-5 * 3600))] {
            _ = try store.recordTrapAttempt(attempt, verdict: nil, retention: 86400, maxRecords: 100)
        }
        let summary = try store.trapSummary(hours: 3, top: 2, now: now.addingTimeInterval(60))
        #expect(summary.perHour == [0, 1, 2] && summary.attempts == 3)
        #expect(summary.topClients.map(\.key) == ["192.0.2.2", "192.0.2.1"] && summary.topClients.map(\.count) == [2, 1])
        #expect(summary.topDomains.map(\.key) == ["victim.example", "other.example"] && summary.topDomains.map(\.count) == [3, 2])
    }
}
