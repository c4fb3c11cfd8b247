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

    @Test func anArrivalCountsOnceWithinTheWindowAndSurvivesReopening() throws {
        let path = VerdictStoreTests.freshPath()
        do {
            let store = try VerdictStore(path: path)
            try store.createRegisteredTest(Self.test("aaaa"))
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
        try store.createRegisteredTest(Self.test("late"))
        try store.settleSending(token: "late", state: .waiting, reply: "250 Ok")
        try store.createRegisteredTest(Self.test("never-sent"))
        try store.createRegisteredTest(Self.test("fresh", createdAt: Self.now.addingTimeInterval(3000)))
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

    @Test func testsAreCountedPerHostAndInAll() throws {
        let store = try VerdictStore(path: VerdictStoreTests.freshPath())
        try store.createRegisteredTest(Self.test("a"))
        try store.createRegisteredTest(Self.test("b", createdAt: Self.now.addingTimeInterval(60)))
        try store.createRegisteredTest(Self.test("c", host: "192.0.2.8", createdAt: Self.now.addingTimeInterval(120)))
        #expect(try store.registeredTestCount(host: "192.0.2.7", since: Self.now) == 2)
        #expect(try store.registeredTestCount(since: Self.now.addingTimeInterval(30)) == 2)
        #expect(try store.registeredTests(host: "192.0.2.7").map(\.token) == ["b", "a"])
        #expect(throws: (any Error).self) { try store.createRegisteredTest(Self.test("a")) } // a token is made once
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
        try store.createRegisteredTest(Self.test("after-upgrade"))
        #expect(try store.registeredTest(token: "after-upgrade") != nil)
    }
}
