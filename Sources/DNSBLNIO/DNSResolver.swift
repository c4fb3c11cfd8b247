import DNSBL
import NIOCore
import NIOPosix

/// Asks one DNS server (a resolver, or rbldnsd itself) over UDP, with a
/// timeout and a second attempt, on a NIO event loop. Each query has its own
/// socket (its own source port) and a random ID, and only the matching answer
/// from that server is taken.
public final class DNSResolver: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case timedOut
        case malformed(String)

        public var description: String {
            switch self {
            case .timedOut: "no answer in time"
            case .malformed(let why): "malformed answer: \(why)"
            }
        }
    }

    public let server: SocketAddress
    private let group: any EventLoopGroup
    private let timeout: TimeAmount
    private let attempts: Int

    public init(server: SocketAddress, group: any EventLoopGroup, timeout: TimeAmount, attempts: Int = 2) {
        self.server = server
        self.group = group
        self.timeout = timeout
        self.attempts = max(1, attempts)
    }

    public func query(_ name: String, type: DNSMessage.RecordType) async throws -> DNSMessage.Answer {
        var lastError: any Error = Failure.timedOut
        for _ in 0..<attempts {
            do {
                return try await ask(name, type: type)
            } catch Failure.timedOut {
                lastError = Failure.timedOut // lost on the way: worth a second try
            }
        }
        throw lastError
    }

    private func ask(_ name: String, type: DNSMessage.RecordType) async throws -> DNSMessage.Answer {
        let id = UInt16.random(in: 0...UInt16.max)
        let query: [UInt8]
        do {
            query = try DNSMessage.query(id: id, name: name, type: type)
        } catch {
            throw Failure.malformed(error.description)
        }
        let eventLoop = group.next()
        let answered = eventLoop.makePromise(of: DNSMessage.Answer.self)
        let (server, timeout) = (server, timeout)
        let channel = try await DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        AnswerHandler(id: id, server: server, timeout: timeout, answered: answered)
                    )
                }
            }
            // Connected: the kernel drops datagrams from anywhere else, and
            // reports an ICMP "port unreachable" as an error (see errorCaught).
            .connect(to: server)
            .get()
        defer { channel.close(promise: nil) }
        let envelope = AddressedEnvelope(remoteAddress: server, data: channel.allocator.buffer(bytes: query))
        channel.writeAndFlush(envelope, promise: nil)
        return try await answered.futureResult.get()
    }
}

/// Completes `answered` once: with the first datagram from the server that
/// answers query `id` (anything else, from another source or with another
/// ID, is ignored, as a spoofed answer would be), or with a timeout. Lives
/// on its channel's event loop, so `done` needs no lock.
private final class AnswerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let id: UInt16
    let server: SocketAddress
    let timeout: TimeAmount
    let answered: EventLoopPromise<DNSMessage.Answer>
    private var done = false
    private var timer: Scheduled<Void>?

    init(id: UInt16, server: SocketAddress, timeout: TimeAmount, answered: EventLoopPromise<DNSMessage.Answer>) {
        self.id = id
        self.server = server
        self.timeout = timeout
        self.answered = answered
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.finish(.failure(DNSResolver.Failure.timedOut))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.failure(DNSResolver.Failure.timedOut))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        guard envelope.remoteAddress == server, bytes.count >= 2, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == id else { return }
        do {
            finish(.success(try DNSMessage.parse(bytes, expectingID: id)))
        } catch {
            finish(.failure(DNSResolver.Failure.malformed(error.description)))
        }
    }

    /// An ICMP "port unreachable" comes back as a read error: no server
    /// there, so no point waiting for the timeout.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
    }

    private func finish(_ result: Result<DNSMessage.Answer, any Error>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        answered.completeWith(result)
    }
}
