import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 GET, for `relay-milter stats` asking the daemon's own
/// listener. Written on NIO rather than with Foundation's URLSession, whose
/// FoundationNetworking would pull libcurl (and its TLS and LDAP libraries)
/// into the statically linked binary for one local request.
enum LoopbackHTTPGet {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The status and body of `GET path` from `host:port`. Blocks the calling
    /// thread, which must not be an event loop (the command line's is not).
    ///
    /// A connection the daemon resets is asked once more: a GET changes
    /// nothing, and `relay-milter stats` met such a reset once in a CI run
    /// (its cause not found), where a second request is what an admin would
    /// do by hand. A daemon that is down still fails at once (refused).
    static func fetch(host: String, port: Int, path: String, timeoutSeconds: Int64 = 10) throws -> (status: Int, body: [UInt8]) {
        do {
            return try fetchOnce(host: host, port: port, path: path, timeoutSeconds: timeoutSeconds)
        } catch let error as IOError where error.errnoCode == ECONNRESET {
            return try fetchOnce(host: host, port: port, path: path, timeoutSeconds: timeoutSeconds)
        }
    }

    /// Why a fetch failed, in an admin's words rather than NIO's type names
    /// (`connection refused`, not `NIOConnectionError(…SingleConnectionFailure…)`).
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return reason(first.error) }
            if let resolution = error.dnsAAAAError ?? error.dnsAError { return "name not resolved: \(resolution)" }
            return "no address to connect to"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case ChannelError.connectTimeout:
            return "no answer to the connection attempt in time"
        case ChannelError.ioOnClosedChannel, ChannelError.eof, ChannelError.alreadyClosed:
            return "the connection closed before a whole answer"
        default:
            return "\(error)"
        }
    }

    private static func fetchOnce(host: String, port: Int, path: String, timeoutSeconds: Int64) throws -> (status: Int, body: [UInt8]) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let response = group.next().makePromise(of: (Int, [UInt8]).self)
        let channel: any Channel
        do {
            channel = try ClientBootstrap(group: group)
                .connectTimeout(.seconds(timeoutSeconds))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(response: response))
                    }
                }
                .connect(host: host, port: port)
                .wait()
        } catch {
            response.fail(error) // NIO insists that every promise is completed
            throw error
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        // Closing the channel ends a wait that took too long (the collector
        // then fails the response).
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(timeoutSeconds)) { channel.close(promise: nil) }
        defer {
            timeout.cancel()
            channel.close(promise: nil)
        }
        let (status, body) = try response.futureResult.wait()
        return (status, body)
    }
}

/// Gathers one response, then fulfils the promise.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let response: EventLoopPromise<(Int, [UInt8])>
    private var status = 0
    private var body: [UInt8] = []
    private var finished = false

    init(response: EventLoopPromise<(Int, [UInt8])>) {
        self.response = response
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let buffer):
            body += buffer.readableBytesView
        case .end:
            finish(.success((status, body)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(LoopbackHTTPGet.Failure(description: "the connection closed before a whole answer")))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    /// A promise is completed once: the first outcome wins.
    private func finish(_ result: Result<(Int, [UInt8]), any Error>) {
        guard !finished else { return }
        finished = true
        response.completeWith(result)
    }
}
