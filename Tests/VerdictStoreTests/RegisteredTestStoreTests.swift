import Foundation
import Testing
import VerdictStore

/// Registered tests in the verdict database, and the database of the last
/// release opened by this one.
struct RegisteredTestStoreTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func test(_ token: String, host: String = "192.0.2.7", createdAt: Date = now) -> RegisteredTestRecord {
        RegisteredTestRecord(token: token, host: host, port: 25, alias: "relay-check+\(token)@example.org",
                             createdAt: createdAt, expiresAt: createdAt.addingTimeInterval(3600))
    }

    static let roomy = RegisteredTestLimits(perHostPerDay: 100, perHour: 100)

    /// Starts `record` where no limit is near.
    static func start(_ record: RegisteredTestRecord, in store: VerdictStore) throws {
        #expect(try store.startRegisteredTest(record, limits: roomy) == .started)
    }

    @Test func anArrivalCountsOnceWithinTheWindowAndSurvivesReopening() throws {
        let path = VerdictStoreTests.freshPath()
        do {
            let store = try VerdictStore(path: path)
            try Self.start(Self.test("aaaa"), in: store)
            try store.settleSending(token: "aaaa", state: .waiting, reply: "250 2.0.0 Ok: queued as 4ABC")
        }
        // A restart in the window loses nothing.
        let store = try VerdictStore(path: path)
        let hops = ["from mx.tested.example ([192.0.2.7]) by mx.example.org", "from checker.example.org by mx.tested.example"]
        guard case .recorded(let record) = try store.recordArrival(token: "aaaa", at: Self.now.addingTimeInterval(90),
                                                                   from: "192.0.2.7", hops: hops) else {
            Issue.record("arrival not recorded")
            return
        }
        #expect(record.state == .delivered && record.deliveredFrom == "192.0.2.7" && record.hops == hops)
        #expect(record.sentReply == "250 2.0.0 Ok: queued as 4ABC")
        #expect(try store.registeredTest(token: "aaaa") == record)
        // A second arrival (a replay) is refused, as is a token nobody made.
        #expect(try store.recordArrival(token: "aaaa", at: Self.now.addingTimeInterval(100), from: "192.0.2.7", hops: []) == .closed(record))
        #expect(try store.recordArrival(token: "guessed", at: Self.now, from: "198.51.100.1", hops: []) == .unknown)
    }

    @Test func aWindowThatPassesLapsesAndRefusesLateArrivals() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        try Self.start(Self.test("late"), in: store)
        try store.settleSending(token: "late", state: .waiting, reply: "250 Ok")
        try Self.start(Self.test("never-sent"), in: store)
        try Self.start(Self.test("fresh", createdAt: Self.now.addingTimeInterval(3000)), in: store)
        let undelivered = try store.closeRegisteredWindows(at: Self.now.addingTimeInterval(3600))
        #expect(undelivered.map(\.token) == ["late"] && undelivered.allSatisfy { $0.state == .undelivered })
        #expect(try store.registeredTest(token: "never-sent")?.state == .lapsed)
        guard case .closed(let record) = try store.recordArrival(token: "late", at: Self.now.addingTimeInterval(3700), from: "192.0.2.7", hops: []) else {
            Issue.record("a late arrival was taken")
            return
        }
        #expect(record.state == .undelivered)
        #expect(try store.registeredTest(token: "fresh")?.state == .sending)
    }

    @Test func theLimitsHoldPerHostForADayAndInAllForAnHour() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        let limits = RegisteredTestLimits(perHostPerDay: 2, perHour: 3)
        #expect(try store.startRegisteredTest(Self.test("a"), limits: limits) == .started)
        #expect(try store.startRegisteredTest(Self.test("b", createdAt: Self.now.addingTimeInterval(60)), limits: limits) == .started)
        #expect(try store.startRegisteredTest(Self.test("c", createdAt: Self.now.addingTimeInterval(120)), limits: limits) == .hostLimitReached)
        #expect(try store.startRegisteredTest(Self.test("d", host: "192.0.2.8", createdAt: Self.now.addingTimeInterval(120)), limits: limits) == .started)
        #expect(try store.startRegisteredTest(Self.test("e", host: "192.0.2.9", createdAt: Self.now.addingTimeInterval(180)), limits: limits) == .hourLimitReached)
        // A refused start leaves no row; an hour on, the global limit has room again, a day on the host's.
        #expect(try store.registeredTest(token: "c") == nil && store.registeredTest(token: "e") == nil)
        #expect(try store.startRegisteredTest(Self.test("f", host: "192.0.2.9", createdAt: Self.now.addingTimeInterval(3660)), limits: limits) == .started)
        #expect(try store.startRegisteredTest(Self.test("g", createdAt: Self.now.addingTimeInterval(3700)), limits: limits) == .hostLimitReached)
        #expect(try store.startRegisteredTest(Self.test("h", createdAt: Self.now.addingTimeInterval(86401)), limits: limits) == .started)
        #expect(try store.registeredTests(host: "192.0.2.7").map(\.token) == ["h", "b", "a"])
        #expect(throws: (any Error).self) { try store.startRegisteredTest(Self.test("a", host: "192.0.2.10"), limits: Self.roomy) } // a token is made once
    }

    @Test func testsAreCountedByStateSinceADate() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        try Self.start(Self.test("old", createdAt: Self.now.addingTimeInterval(-7200)), in: store)
        try Self.start(Self.test("a"), in: store)
        try Self.start(Self.test("b"), in: store)
        try Self.start(Self.test("c"), in: store)
        try store.settleSending(token: "a", state: .waiting, reply: "250 Ok")
        try store.settleSending(token: "b", state: .refused, reply: "at rcpt: 554 5.7.1")
        #expect(try store.registeredTestCounts(since: Self.now) == [.waiting: 1, .refused: 1, .sending: 1])
        #expect(try store.registeredTestCounts(since: Self.now.addingTimeInterval(-86400))[.sending] == 2)
    }

    /// Copies of a test meet in any order and end the same: a state gives
    /// way only to one further on, and settled states are final.
    @Test func mergedCopiesOnlyMoveForward() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        var waiting = Self.test("t")
        waiting.state = .waiting
        var delivered = waiting
        delivered.state = .delivered
        delivered.deliveredFrom = "192.0.2.7"
        var undelivered = waiting
        undelivered.state = .undelivered
        #expect(try store.mergeRegisteredTests([waiting]) == [waiting]) // new here
        #expect(try store.mergeRegisteredTests([Self.test("t")]) == []) // sending is behind waiting
        #expect(try store.mergeRegisteredTests([delivered]) == [delivered])
        #expect(try store.mergeRegisteredTests([undelivered, waiting]) == [])
        #expect(try store.registeredTest(token: "t") == delivered)
        #expect(try store.registeredTests(endingAfter: Self.now.addingTimeInterval(3599)).map(\.token) == ["t"])
        #expect(try store.registeredTests(endingAfter: Self.now.addingTimeInterval(3600)).isEmpty)
    }

    /// A database as release 0.1.0 wrote it (Fixtures/verdicts-0.1.0.sqlite:
    /// two hosts set by hand, one tested) opens, migrates, and keeps every record.
    @Test func theLastReleasesDatabaseOpensWithItsRecords() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/verdicts-0.1.0.sqlite")
        let path = VerdictStoreTests.freshPath()
        try FileManager.default.copyItem(atPath: fixture.path, toPath: path)
        let store = try VerdictStore(path: path)
        let records = try store.all()
        #expect(records.map(\.host) == ["127.0.0.1", "192.0.2.7", "2001:db8::25"])
        #expect(records.map(\.verdict) == ["no_smtp", "open", "closed"])
        #expect(records.map(\.source) == [.probe, .manual, .manual])
        #expect(records[0].detail == "connection refused" && records[1].detail == "set by hand")
        // Before any migration, a daemon that may not write reads it as it is.
        let copy = VerdictStoreTests.freshPath()
        try FileManager.default.copyItem(atPath: fixture.path, toPath: copy)
        #expect(try VerdictStore.openReadOnlySnapshot(path: copy).all() == records)
        // And the new table is there to use.
        try Self.start(Self.test("after-upgrade"), in: store)
        #expect(try store.registeredTest(token: "after-upgrade") != nil)
    }
}
