import NIOCore
import NIOPosix
import RelayProbe
#if canImport(Glibc)
import Glibc
#endif

/// Where to test, and how long to wait.
public struct ProbeTarget: Sendable, Equatable, CustomStringConvertible {
    /// An IPv4 or IPv6 address in text form.
    public let address: String
    public let port: Int
    /// The local address to test from; the system chooses when nil.
    public let sourceAddress: String?

    public init(address: String, port: Int, sourceAddress: String? = nil) {
        self.address = address
        self.port = port
        self.sourceAddress = sourceAddress
    }

    /// The address as an SMTP address literal.
    public var ipLiteral: String { address.contains(":") ? "[IPv6:\(address)]" : "[\(address)]" }

    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

public struct ProbeTimeouts: Sendable, Equatable {
    public var connect: TimeAmount
    /// Longest wait for any one reply (the banner included).
    public var command: TimeAmount
    /// Longest a whole test may take, reconnections included.
    public var total: TimeAmount

    public init(connect: TimeAmount = .seconds(10), command: TimeAmount = .seconds(30), total: TimeAmount = .seconds(120)) {
        self.connect = connect
        self.command = command
        self.total = total
    }
}

/// Runs relay tests over the network with SwiftNIO. Each test lives on one
/// event loop; its `ProbeStateMachine` decides everything, this only moves
/// lines, opens and closes connections, and runs the timers.
public struct SMTPProber: Sendable {
    let group: any EventLoopGroup

    public init(group: any EventLoopGroup) {
        self.group = group
    }

    public func probe(_ target: ProbeTarget, configuration: ProbeStateMachine.Configuration, timeouts: ProbeTimeouts = ProbeTimeouts()) async -> ProbeReport {
        // The future is only ever succeeded: every path ends in a report.
        (try? await startProbe(target, configuration: configuration, timeouts: timeouts).get())
            ?? ProbeReport(verdict: .error, outcomes: [], banner: "", hostname: nil, detail: "probe aborted")
    }

    /// Starts a test; the future completes with its report (it never fails).
    /// `progress` is called on the test's event loop as tests get their answers.
    public func startProbe(_ target: ProbeTarget, configuration: ProbeStateMachine.Configuration, timeouts: ProbeTimeouts = ProbeTimeouts(),
                           progress: (@Sendable (ProbeProgress) -> Void)? = nil) -> EventLoopFuture<ProbeReport> {
        let loop = group.next()
        let promise = loop.makePromise(of: ProbeReport.self)
        loop.execute {
            ProbeConnection(target: target, machine: ProbeStateMachine(configuration: configuration),
                            timeouts: timeouts, loop: loop, promise: promise, progress: progress).start()
        }
        return promise.futureResult
    }
}

/// The I/O side of one relay test.
///
/// `@unchecked Sendable`: every method runs on `loop` (each entry point hops
/// there or is called from a channel handler on it), so its mutable state is
/// confined to that one thread.
private final class ProbeConnection: @unchecked Sendable {
    let target: ProbeTarget
    var machine: ProbeStateMachine
    let timeouts: ProbeTimeouts
    let loop: any EventLoop
    let promise: EventLoopPromise<ProbeReport>
    let progress: (@Sendable (ProbeProgress) -> Void)?

    var channel: (any Channel)?
    /// Bumped for every connection, so events from an old one are ignored.
    var generation = 0
    /// Fires `timeouts.command` after `lastActivity` on the connection it
    /// watches. It is re-armed lazily, not cancelled and scheduled again for
    /// every line: cancelling a task NIO scheduled scans the event loop's
    /// whole timer heap, which holds two timers per test in flight, and that
    /// scan took a fifth of the probe loop's time with 1,000 tests in flight
    /// (docs/DESIGN.md, profiling item 14).
    var idleTimer: Scheduled<Void>?
    var lastActivity = NIODeadline.now()
    /// The connection (`generation`) the idle timer watches.
    var idleWatches = 0
    var deadline: Scheduled<Void>?
    /// Defence in depth for "never send content": once a 354 arrived on a
    /// connection, nothing more is written to it, whatever the machine says.
    var contentInvited = false

    init(target: ProbeTarget, machine: ProbeStateMachine, timeouts: ProbeTimeouts, loop: any EventLoop, promise: EventLoopPromise<ProbeReport>,
         progress: (@Sendable (ProbeProgress) -> Void)?) {
        self.target = target
        self.machine = machine
        self.timeouts = timeouts
        self.loop = loop
        self.promise = promise
        self.progress = progress
    }

    func start() {
        deadline = loop.scheduleTask(in: timeouts.total) { [self] in feed(.timedOut) }
        connect()
    }

    func connect() {
        generation += 1
        let current = generation
        contentInvited = false
        let connecting: EventLoopFuture<any Channel>
        do {
            connecting = try target.connect(on: loop, timeout: timeouts.connect) { [self] in ProbeHandler(connection: self, generation: current) }
        } catch {
            feed(.connectFailed(.other("bad address: \(error)")))
            return
        }
        connecting
            .whenComplete { [self] result in
                guard current == generation, !machine.isFinished else {
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let channel):
                    self.channel = channel
                    armIdleTimer()
                    feed(.connected)
                case .failure(let error):
                    feed(.connectFailed(ProbeStateMachine.ConnectFailure(error)))
                }
            }
    }

    func received(_ line: String, generation: Int) {
        guard generation == self.generation else { return }
        if line.hasPrefix("354") { contentInvited = true }
        armIdleTimer()
        feed(.line(line))
    }

    func closedByPeer(generation: Int) {
        guard generation == self.generation, channel != nil else { return }
        channel = nil
        feed(.peerClosed)
    }

    func feed(_ event: ProbeStateMachine.Event) {
        // The commands of one event are a pipelined group (or one command):
        // they go out in one write, so in one segment.
        var group = ""
        for action in machine.handle(event) {
            if case .send(let command) = action {
                group += command + "\r\n"
                continue
            }
            write(group)
            group = ""
            switch action {
            case .send:
                break // gathered above
            case .progress(let step):
                progress?(step)
            case .close:
                closeChannel()
            case .reconnect(let pause):
                closeChannel()
                if pause == .zero {
                    connect()
                } else {
                    // Nothing to time out while we wait: a connection the peer
                    // closed keeps its generation, which the idle timer watches.
                    generation += 1
                    loop.scheduleTask(in: TimeAmount(pause)) { [self] in
                        // The total deadline may have ended the test meanwhile.
                        if !machine.isFinished { connect() }
                    }
                }
            case .finish(let report):
                closeChannel()
                idleTimer?.cancel()
                deadline?.cancel()
                promise.succeed(report)
            }
        }
        write(group)
    }

    func write(_ commands: String) {
        guard !commands.isEmpty, let channel, !contentInvited else { return }
        armIdleTimer()
        channel.writeAndFlush(ByteBuffer(string: commands), promise: nil)
    }

    func closeChannel() {
        guard let channel else { return }
        self.channel = nil
        generation += 1 // events still in flight from this channel are stale now
        channel.close(mode: .all, promise: nil)
    }

    /// Restarts the current connection's command timeout.
    func armIdleTimer() {
        lastActivity = .now()
        idleWatches = generation
        // A timer still pending looks at `lastActivity` when it fires.
        if idleTimer == nil { scheduleIdleCheck(at: lastActivity + timeouts.command) }
    }

    private func scheduleIdleCheck(at due: NIODeadline) {
        idleTimer = loop.scheduleTask(deadline: due) { [self] in
            idleTimer = nil
            // A connection since closed is no longer watched; the next one arms anew.
            guard idleWatches == generation, !machine.isFinished else { return }
            let due = lastActivity + timeouts.command
            if NIODeadline.now() < due {
                scheduleIdleCheck(at: due)
            } else {
                feed(.timedOut)
            }
        }
    }

}

extension ProbeStateMachine.ConnectFailure {
    /// What NIO's error says of a connection that could not be made.
    init(_ error: any Error) {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            self = .timedOut
        } else if let ioError = error as? IOError, ioError.errnoCode == ECONNREFUSED {
            self = .refused
        } else if let ioError = error as? IOError, ioError.errnoCode == ETIMEDOUT {
            self = .timedOut
        } else {
            self = .other(String("\(error)".prefix(120)))
        }
    }
}

/// Moves lines from the channel to the `ProbeConnection`, and tells it when the peer hung up.
private final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = String
    let connection: ProbeConnection
    let generation: Int

    init(connection: ProbeConnection, generation: Int) {
        self.connection = connection
        self.generation = generation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(unwrapInboundIn(data), generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closedByPeer(generation: generation)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
