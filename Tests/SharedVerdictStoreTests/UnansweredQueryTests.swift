#if PostgreSQL
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SharedVerdictStore
import Testing

/// A query the server will never answer must fail, not wait for good (see
/// `SharedVerdictStore.query`).
@Suite struct UnansweredQueryTests {
    /// postgres-nio (1.33) drops a query written to a closed channel and
    /// never answers it, the likeliest cause of a fleet sync loop that
    /// stalled in CI.
    @Test func aQueryAfterTheServerHungUpFailsAtOnce() async throws {
        try await Self.withStore(on: .hangUp) { store in
            // Let the hang-up reach the client first: that order is the one that hung.
            try await Task.sleep(for: .milliseconds(300))
            let outcome = await Self.outcome(within: .seconds(10)) { try await store.releaseClaim(on: "192.0.2.1") }
            switch outcome {
            case nil: Issue.record("the query was still pending after 10 s")
            case .success?: Issue.record("the query succeeded on a closed connection")
            case .failure(let error)?: #expect("\(error)" == "the connection to the shared database has closed")
            }
        }
    }

    /// A server that keeps the connection but answers nothing (as one behind
    /// a link that drops packets): the query times out and closes it.
    @Test func aQueryTheServerNeverAnswersTimesOut() async throws {
        try await Self.withStore(on: .fallSilent, queryTimeout: .milliseconds(500)) { store in
            let outcome = await Self.outcome(within: .seconds(10)) { try await store.releaseClaim(on: "192.0.2.1") }
            switch outcome {
            case nil: Issue.record("the query was still pending after 10 s")
            case .success?: Issue.record("the query succeeded with no answer")
            case .failure(let error)?:
                #expect("\(error)" == "the shared database did not answer a query in 0.5 seconds; the connection was closed")
            }
            // The connection is closed now, so the next query fails at once.
            let next = await Self.outcome(within: .seconds(10)) { try await store.releaseClaim(on: "192.0.2.1") }
            if case .failure(let error)? = next {
                #expect("\(error)" == "the connection to the shared database has closed")
            } else {
                Issue.record("the next query did not fail: \(String(describing: next))")
            }
        }
    }

    static func withStore(
        on afterLogIn: FakeServer.AfterLogIn, queryTimeout: Duration = .seconds(30), _ body: (SharedVerdictStore) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in channel.pipeline.addHandler(FakeServer(afterLogIn: afterLogIn)) }
            .bind(host: "127.0.0.1", port: 0).get()
        let endpoint = SharedVerdictStore.Endpoint(
            host: "127.0.0.1", port: server.localAddress!.port!, user: "relay_milter", password: nil,
            database: "relay_milter", tls: .disable
        )
        var failure: (any Error)?
        do {
            let store = try await SharedVerdictStore.connect(
                to: endpoint, instance: "a", eventLoop: group.next(), queryTimeout: queryTimeout, logger: Logger(label: "test")
            )
            do { try await body(store) } catch { failure = error }
            await store.close()
        } catch {
            failure = error
        }
        try await server.close()
        try await group.shutdownGracefully()
        if let failure { throw failure }
    }

    /// `body`'s outcome, or nil if it has not finished in `time`. Not a task
    /// group: the defect under test is a call that never returns, and a
    /// group would wait on it for good.
    static func outcome(
        within time: Duration, of body: @escaping @Sendable () async throws -> Void
    ) async -> Result<Void, any Error>? {
        await withCheckedContinuation { continuation in
            let waiting = NIOLockedValueBox<CheckedContinuation<Result<Void, any Error>?, Never>?>(continuation)
            let finish: @Sendable (Result<Void, any Error>?) -> Void = { outcome in
                waiting.withLockedValue { waiting in
                    waiting?.resume(returning: outcome)
                    waiting = nil
                }
            }
            Task {
                do { try await body(); finish(.success(())) } catch { finish(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: time)
                finish(nil)
            }
        }
    }
}

/// A PostgreSQL server that lets the client in without a password (the
/// startup message is the only one it reads), then hangs up or ignores all
/// that follows.
final class FakeServer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum AfterLogIn { case hangUp, fallSilent }
    let afterLogIn: AfterLogIn
    /// Whether the startup message has come. One handler per connection, on
    /// its event loop; the lock is there because a handler must be Sendable.
    private let loggedIn = NIOLockedValueBox(false)

    init(afterLogIn: AfterLogIn) {
        self.afterLogIn = afterLogIn
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !loggedIn.withLockedValue({ $0 }) else { return }
        loggedIn.withLockedValue { $0 = true }
        var reply = context.channel.allocator.buffer(capacity: 32)
        reply.writeInteger(UInt8(ascii: "R")); reply.writeInteger(Int32(8)); reply.writeInteger(Int32(0)) // AuthenticationOk
        reply.writeInteger(UInt8(ascii: "K")); reply.writeInteger(Int32(12)); reply.writeInteger(Int32(1)); reply.writeInteger(Int32(2)) // BackendKeyData
        reply.writeInteger(UInt8(ascii: "Z")); reply.writeInteger(Int32(5)); reply.writeInteger(UInt8(ascii: "I")) // ReadyForQuery, idle
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        if afterLogIn == .hangUp { context.close(promise: nil) }
    }
}
#endif
