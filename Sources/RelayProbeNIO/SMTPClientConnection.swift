import NIOCore
import NIOPosix
import RelayProbe

extension ProbeTarget {
    /// Opens a connection to the target, from its source address if it has
    /// one, with TCP_NODELAY (each write is a command group the server must
    /// see at once) and the reply lines decoded and handed to `lines`, the
    /// pipeline's last handler. Throws for an address that is not one.
    func connect(on loop: any EventLoop, timeout: TimeAmount,
                 lines: @escaping @Sendable () -> any ChannelInboundHandler) throws -> EventLoopFuture<any Channel> {
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPLineDecoder(maxLength: 2048)))
                    try channel.pipeline.syncOperations.addHandler(lines())
                }
            }
        let address = try SocketAddress(ipAddress: self.address, port: port)
        if let sourceAddress {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: sourceAddress, port: 0))
        }
        return bootstrap.connect(to: address)
    }
}
