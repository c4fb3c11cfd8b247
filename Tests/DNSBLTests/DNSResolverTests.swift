import DNSBL
import DNSBLNIO
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The resolver against a scripted UDP server on loopback.
struct DNSResolverTests {
    /// Answers every query with `reply(query)`, from 127.0.0.1.
    final class ScriptedServer: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let reply: @Sendable ([UInt8]) -> [[UInt8]]

        init(reply: @escaping @Sendable ([UInt8]) -> [[UInt8]]) { self.reply = reply }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            for answer in reply(Array(envelope.data.readableBytesView)) {
                context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress,
                                                                       data: context.channel.allocator.buffer(bytes: answer))), promise: nil)
            }
        }
    }

    static func serve(_ reply: @escaping @Sendable ([UInt8]) -> [[UInt8]], group: any EventLoopGroup) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelInitializer { channel in channel.pipeline.addHandler(ScriptedServer(reply: reply)) }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// The query's header and question, turned into an answer with one A record.
    static func listing(_ query: [UInt8]) -> [UInt8] {
        var answer = query
        answer[2] = 0x81; answer[3] = 0x80; answer[7] = 1
        return answer + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 2]
    }

    @Test func takesTheMatchingAnswerAndIgnoresForgeries() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await Self.serve({ query in
            var forged = Self.listing(query)
            forged[0] ^= 0xFF // another ID: must be ignored
            forged[forged.count - 1] = 9
            return [forged, Self.listing(query)]
        }, group: group)
        let resolver = DNSResolver(server: server.localAddress!, group: group, timeout: .seconds(2))
        let answer = try await resolver.query("2.0.0.127.bl.test", type: .a)
        #expect(answer.addresses == [DNSMessage.AddressRecord(address: 0x7F00_0002, ttl: 30)])
        try await server.close()
        try await group.shutdownGracefully()
    }

    @Test func aSilentServerTimesOutAfterEachAttempt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let queries = QueryCount()
        let server = try await Self.serve({ _ in
            queries.count.withLock { $0 += 1 }
            return []
        }, group: group)
        let resolver = DNSResolver(server: server.localAddress!, group: group, timeout: .milliseconds(100), attempts: 2)
        await #expect(throws: DNSResolver.Failure.timedOut) { try await resolver.query("2.0.0.127.bl.test", type: .a) }
        #expect(queries.count.withLock { $0 } == 2)
        try await server.close()
        try await group.shutdownGracefully()
    }
}

final class QueryCount: Sendable {
    let count = Mutex(0)
}

extension DNSResolverTests {
    /// Nobody listening: the ICMP error ends the query at once, with no second attempt.
    @Test func noServerFailsWithoutWaitingForTheTimeout() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let closed = try await Self.serve({ _ in [] }, group: group)
        let address = closed.localAddress!
        try await closed.close()
        let resolver = DNSResolver(server: address, group: group, timeout: .seconds(30), attempts: 2)
        do {
            _ = try await resolver.query("2.0.0.127.bl.test", type: .a)
            Issue.record("an answer from nowhere")
        } catch {
            #expect(error as? DNSResolver.Failure != .timedOut, "waited for the timeout: \(error)")
        }
        try await group.shutdownGracefully()
    }
}
