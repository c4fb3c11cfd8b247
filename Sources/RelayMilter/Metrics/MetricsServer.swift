import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP listener that serves `GET /metrics` (Prometheus text format) and
/// `GET /stats?since=SECONDS` (JSON, for `relay-milter stats`), nothing else. It runs on its own event-loop thread, far from the milter's
/// callbacks; a scrape reads the registry under its own lock.
final class MetricsServer: Sendable {
    private let channel: any Channel

    /// Binds `host:port` and starts serving; throws if the address is taken.
    init(host: String, port: Int, group: any EventLoopGroup, metrics: RelayMetrics, stats: StatsCollector,
         cacheByVerdict: @escaping @Sendable () -> [String: Int], beforeScrape: @escaping @Sendable () -> Void) throws {
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics, stats: stats, cacheByVerdict: cacheByVerdict, beforeScrape: beforeScrape))
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

private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: RelayMetrics
    let stats: StatsCollector
    let cacheByVerdict: @Sendable () -> [String: Int]
    let beforeScrape: @Sendable () -> Void
    var request: HTTPRequestHead?

    init(metrics: RelayMetrics, stats: StatsCollector, cacheByVerdict: @escaping @Sendable () -> [String: Int],
         beforeScrape: @escaping @Sendable () -> Void) {
        self.metrics = metrics
        self.stats = stats
        self.cacheByVerdict = cacheByVerdict
        self.beforeScrape = beforeScrape
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
            let parts = head.uri.split(separator: "?", maxSplits: 1)
            let path = parts.first.map(String.init) ?? head.uri
            if head.method == .GET, path == "/metrics" {
                beforeScrape()
                respond(context, head, .ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
            } else if head.method == .GET, path == "/stats" {
                let query = parts.count > 1 ? parts[1] : ""
                let since = query.split(separator: "&").first { $0.hasPrefix("since=") }.flatMap { Int($0.dropFirst(6)) } ?? 3600
                var report = stats.report(sinceSeconds: max(60, since))
                report.cacheByVerdict = cacheByVerdict().filter { $0.value > 0 }
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
    }
}
