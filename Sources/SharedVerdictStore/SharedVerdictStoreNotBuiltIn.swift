#if !PostgreSQL
import Foundation
import Logging
import NIOCore
import VerdictStore

/// The shared store in a build without the PostgreSQL trait: the same calls as
/// SharedVerdictStore.swift, so the daemon builds unchanged, but no value of
/// it can exist. `connect` always throws, and the config loader refuses
/// `backend = "postgresql"` before the daemon would try; every other call is
/// on a value that was never made (`switch self {}` says so to the compiler).
public enum SharedVerdictStore: Sendable {
    public static func connect(
        to endpoint: Endpoint, instance: String, eventLoop: any EventLoop, connectTimeoutSeconds: Int64 = 5,
        queryTimeout: Duration, logger: Logger
    ) async throws -> SharedVerdictStore {
        throw Failure.notBuiltIn
    }

    public var instance: String { switch self {} }
    public func close() async { switch self {} }
    @discardableResult
    public func migrate() async throws -> (from: Int, to: Int) { switch self {} }
    @discardableResult
    public func upsert(_ records: [VerdictRecord]) async throws -> Int { switch self {} }
    public func changes(after id: Int64, limit: Int) async throws -> [Change] { switch self {} }
    public func onEachVerdictChange(_ body: @Sendable () -> Void) async throws { switch self {} }
    public func claimTest(of host: String, forSeconds seconds: Int) async throws -> Claim { switch self {} }
    public func releaseClaim(on host: String) async throws { switch self {} }
    public func shareRegisteredTests(_ records: [RegisteredTestRecord]) async throws { switch self {} }
    public func registeredTests(endingAfter date: Date) async throws -> [RegisteredTestRecord] { switch self {} }
    public func closeRegisteredWindows(at now: Date) async throws -> [RegisteredTestRecord] { switch self {} }
    public func setRollups(_ rows: [RollupRow]) async throws { switch self {} }
    public func pruneRollups(_ granularity: RollupRow.Granularity, before period: Int) async throws { switch self {} }
    public func fleetRollups(_ granularity: RollupRow.Granularity, since period: Int) async throws -> [(instance: String, row: RollupRow)] {
        switch self {}
    }
}
#endif
