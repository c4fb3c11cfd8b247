#if PostgreSQL
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SharedVerdictStore
import Testing

/// A query on a connection the server has closed must fail, not wait for
/// good: postgres-nio (1.33) drops a query written to a closed channel and
/// never answers it, which once hung the fleet's sync loop in CI (see
/// `SharedVerdictStore.query`).
@Suite struct ClosedConnectionTests {
    @Test func aQueryAfterTheServerHungUpFailsAtOnce() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in channel.pipeline.addHandler(LogInThenHangUp()) }
            .bind(host: "127.0.0.1", port: 0).get()
        let endpoint = SharedVerdictStore.Endpoint(
            host: "127.0.0.1", port: server.localAddress!.port!, user: "relay_milter", password: nil,
            database: "relay_milter", tls: .disable
        )
        let store = try await SharedVerdictStore.connect(
            to: endpoint, instance: "a", eventLoop: group.next(), logger: Logger(label: "test")
        )
        // Let the hang-up reach the client first: that order is the one that hung.
        try await Task.sleep(for: .milliseconds(300))

        let outcome = await Self.outcome(within: .seconds(10)) { try await store.releaseClaim(on: "192.0.2.1") }
        switch outcome {
        case nil: Issue.record("the query was still pending after 10 s")
        case .success?: Issue.record("the query succeeded on a closed connection")
        case .failure(let error)?: #expect("\(error)" == "the connection to the shared database has closed")
        }
        await store.close()
        try await server.close()
        try await group.shutdownGracefully()
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
/// startup message is all it reads) and closes the connection at once.
private final class LogInThenHangUp: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var reply = context.channel.allocator.buffer(capacity: 32)
        reply.writeInteger(UInt8(ascii: "R")); reply.writeInteger(Int32(8)); reply.writeInteger(Int32(0)) // AuthenticationOk
        reply.writeInteger(UInt8(ascii: "K")); reply.writeInteger(Int32(12)); reply.writeInteger(Int32(1)); reply.writeInteger(Int32(2)) // BackendKeyData
        reply.writeInteger(UInt8(ascii: "Z")); reply.writeInteger(Int32(5)); reply.writeInteger(UInt8(ascii: "I")) // ReadyForQuery, idle
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        context.close(promise: nil)
    }
}
#endif
