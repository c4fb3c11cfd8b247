import NIOCore
import NIOPosix
import RelayProbe

/// Relays a registered test's one message over the network with SwiftNIO:
/// one connection, whose `RegisteredDeliveryStateMachine` decides
/// everything; this moves lines and runs the timers.
public struct RegisteredSender: Sendable {
    let group: any EventLoopGroup

    public init(group: any EventLoopGroup) {
        self.group = group
    }

    /// The future completes with the report; it never fails.
    public func send(_ message: RegisteredTestMessage, to target: ProbeTarget, heloName: String,
                     timeouts: ProbeTimeouts = ProbeTimeouts()) -> EventLoopFuture<RegisteredDeliveryReport> {
        let loop = group.next()
        let promise = loop.makePromise(of: RegisteredDeliveryReport.self)
        loop.execute {
            DeliveryConnection(target: target, machine: RegisteredDeliveryStateMachine(message: message, heloName: heloName),
                               timeouts: timeouts, loop: loop, promise: promise).start()
        }
        return promise.futureResult
    }
}

/// The I/O side of one delivery.
///
/// `@unchecked Sendable`: every method runs on `loop` (entry points hop there
/// or are called by a channel handler on it), so its state is confined to it.
private final class DeliveryConnection: @unchecked Sendable {
    let target: ProbeTarget
    var machine: RegisteredDeliveryStateMachine
    let timeouts: ProbeTimeouts
    let loop: any EventLoop
    let promise: EventLoopPromise<RegisteredDeliveryReport>
    var channel: (any Channel)?
    var idleTimer: Scheduled<Void>?
    var deadline: Scheduled<Void>?

    init(target: ProbeTarget, machine: RegisteredDeliveryStateMachine, timeouts: ProbeTimeouts, loop: any EventLoop,
         promise: EventLoopPromise<RegisteredDeliveryReport>) {
        self.target = target
        self.machine = machine
        self.timeouts = timeouts
        self.loop = loop
        self.promise = promise
    }

    func start() {
        deadline = loop.scheduleTask(in: timeouts.total) { [self] in feed(.timedOut) }
        let connecting: EventLoopFuture<any Channel>
        do {
            connecting = try target.connect(on: loop, timeout: timeouts.connect) { [self] in DeliveryHandler(connection: self) }
        } catch {
            feed(.connectFailed(.other("bad address: \(error)")))
            return
        }
        connecting.whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard !machine.isFinished else { channel.close(promise: nil); return }
                self.channel = channel
                armIdleTimer()
                feed(.connected)
            case .failure(let error):
                feed(.connectFailed(ProbeStateMachine.ConnectFailure(error)))
            }
        }
    }

    func received(_ line: String) {
        armIdleTimer()
        feed(.line(line))
    }

    func closedByPeer() {
        guard channel != nil else { return }
        channel = nil
        feed(.peerClosed)
    }

    func feed(_ event: RegisteredDeliveryStateMachine.Event) {
        // The lines of one event go out in one write (the message after 354).
        var lines = ""
        for action in machine.handle(event) {
            switch action {
            case .send(let line):
                lines += line + "\r\n"
            case .close:
                write(lines)
                lines = ""
                channel?.close(mode: .all, promise: nil)
                channel = nil
            case .finish(let report):
                write(lines)
                lines = ""
                channel?.close(mode: .all, promise: nil)
                channel = nil
                idleTimer?.cancel()
                deadline?.cancel()
                promise.succeed(report)
            }
        }
        write(lines)
    }

    func write(_ lines: String) {
        guard !lines.isEmpty, let channel else { return }
        channel.writeAndFlush(ByteBuffer(string: lines), promise: nil)
    }

    /// Restarts the command timeout.
    func armIdleTimer() {
        idleTimer?.cancel()
        idleTimer = loop.scheduleTask(in: timeouts.command) { [self] in
            if !machine.isFinished { feed(.timedOut) }
        }
    }
}

private final class DeliveryHandler: ChannelInboundHandler {
    typealias InboundIn = String
    let connection: DeliveryConnection

    init(connection: DeliveryConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closedByPeer()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
