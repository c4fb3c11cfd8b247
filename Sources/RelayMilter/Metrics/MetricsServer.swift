import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP listener that serves `GET /metrics` (Prometheus text format) and
/// `GET /stats?since=SECONDS` (JSON, for `relay-milter stats`), nothing else. It runs on its own event-loop thread, far from the milter's
/// callbacks; a scrape reads the registry under its own lock.
///
/// It shares the process's file descriptors with libmilter, so no client may
/// hold many of them: connections beyond `maximumConnections` are closed as
/// they are accepted, and one that has not sent a whole request within
/// `requestDeadline` of opening (or of its last response) is closed, however
/// slowly it trickles bytes. A request's head is bounded by NIOHTTP1's parser
/// (80 KiB; more is a parse error, and the connection closes).
final class MetricsServer: Sendable {
    static let maximumConnections = 64
    static let requestDeadline = TimeAmount.seconds(10)

    private let channel: any Channel

    /// Binds `host:port` and starts serving; throws if the address is taken.
    /// `statsDetail`: whether `/stats` names clients and domains;
    /// `completeStats` adds to a `/stats` report what the collector does not
    /// count (the verdict cache, registered tests).
    init(host: String, port: Int, group: any EventLoopGroup, metrics: RelayMetrics, stats: StatsCollector, statsDetail: Bool,
         completeStats: @escaping @Sendable (inout StatsReport) -> Void, beforeScrape: @escaping @Sendable () -> Void) throws {
        let open = NIOLockedValueBox(0)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionCap(open: open, maximum: Self.maximumConnections))
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(
                        metrics: metrics, stats: stats, statsDetail: statsDetail, completeStats: completeStats, beforeScrape: beforeScrape))
                }
            }
            .bind(host: host, port: port)
            .wait()
    }

    var localPort: Int? { channel.localAddress?.port }

    func close() {
        try? channel.close().wait()
    }
}

/// On the listening channel: closes accepted connections beyond `maximum`
/// open at once, before they reach the HTTP pipeline.
private final class ConnectionCap: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    /// Shared with the child channels' close callbacks, which may run on
    /// another event loop of the group.
    let open: NIOLockedValueBox<Int>
    let maximum: Int

    init(open: NIOLockedValueBox<Int>, maximum: Int) {
        self.open = open
        self.maximum = maximum
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        let admitted = open.withLockedValue { count in
            guard count < maximum else { return false }
            count += 1
            return true
        }
        guard admitted else {
            child.close(promise: nil)
            return
        }
        let open = open
        child.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
        context.fireChannelRead(data)
    }
}

private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: RelayMetrics
    let stats: StatsCollector
    let statsDetail: Bool
    let completeStats: @Sendable (inout StatsReport) -> Void
    let beforeScrape: @Sendable () -> Void
    var request: HTTPRequestHead?
    /// Closes the connection unless a whole request arrives in time.
    var deadline: Scheduled<Void>?

    init(metrics: RelayMetrics, stats: StatsCollector, statsDetail: Bool, completeStats: @escaping @Sendable (inout StatsReport) -> Void,
         beforeScrape: @escaping @Sendable () -> Void) {
        self.metrics = metrics
        self.stats = stats
        self.statsDetail = statsDetail
        self.completeStats = completeStats
        self.beforeScrape = beforeScrape
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armDeadline(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    private func armDeadline(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel // Sendable, unlike the context
        deadline = context.eventLoop.scheduleTask(in: MetricsServer.requestDeadline) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            deadline?.cancel()
            let parts = head.uri.split(separator: "?", maxSplits: 1)
            let path = parts.first.map(String.init) ?? head.uri
            if head.method == .GET, path == "/metrics" {
                beforeScrape()
                respond(context, head, .ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
            } else if head.method == .GET, path == "/stats" {
                let query = parts.count > 1 ? parts[1] : ""
                let since = query.split(separator: "&").first { $0.hasPrefix("since=") }.flatMap { Int($0.dropFirst(6)) } ?? 3600
                var report = stats.report(sinceSeconds: max(60, since), top: statsDetail ? 10 : 0)
                completeStats(&report)
                if !statsDetail { report.topListsWithheld = true }
                let body = (try? JSONEncoder().encode(report)).map { Array($0) } ?? Array("{}".utf8)
                respond(context, head, .ok, "application/json", body)
            } else {
                respond(context, head, .notFound, "text/plain; charset=utf-8", Array("only GET /metrics and GET /stats are served here\n".utf8))
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(body.count)")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        let channel = context.channel // Sendable, unlike the context
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
        if keepAlive { armDeadline(context) }
    }
}
