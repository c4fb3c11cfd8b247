import CMilter
import CMilterShim
import MilterSocket
import NIOConcurrencyHelpers
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How libmilter listens and what it asks the MTA for.
public struct MilterSettings: Sendable, Equatable {
    public var name: String
    public var socket: SocketSpec
    public var backlog: Int32
    /// Seconds libmilter waits for the MTA on a read or write.
    public var timeoutSeconds: Int32
    public var macros: MacroRequest
    /// Stages whose callbacks always answer "continue". The MTA is told not to
    /// wait for their reply (`SMFIP_NR_*`), which saves it a round trip per
    /// stage. Over TCP only where the MTA sends the unanswered packet together
    /// with its next one (`MilterStage.unansweredLeavesWithTheNextCommand`):
    /// a packet sent alone and unanswered leaves the MTA's next write to Nagle
    /// and delayed ACKs (~40 ms). A no-reply stage may be lost if the MTA hangs
    /// up right after it: libmilter does not read what is left on a socket the
    /// peer closed.
    public var quietStages: Set<MilterStage>
    /// Quiet stages that also tell the session nothing it does not learn at a
    /// later stage. Over a unix socket the MTA is asked not to send them at
    /// all (`SMFIP_NO*`), which saves the milter a read and a thread wake-up
    /// per stage; an MTA that cannot skip them still need not wait for them.
    /// Over TCP they are not skipped: Postfix still sends a skipped stage's
    /// macros, unanswered, so there skipping is worth no more than waiving
    /// the reply, and the rule above decides.
    public var skippedStages: Set<MilterStage>
    /// Whether the MTA sends the message's header fields (`MilterSession.header`);
    /// otherwise it is told to skip them (`SMFIP_NOHDRS`).
    public var readsHeaders: Bool
    /// Whether the MTA sends the message's body (`MilterSession.body`);
    /// otherwise it is told to skip it (`SMFIP_NOBODY`).
    public var readsBody: Bool

    public init(name: String, socket: SocketSpec, backlog: Int32, timeoutSeconds: Int32, macros: MacroRequest,
                quietStages: Set<MilterStage> = [], skippedStages: Set<MilterStage> = [], readsHeaders: Bool = false,
                readsBody: Bool = false) {
        self.readsHeaders = readsHeaders
        self.readsBody = readsBody
        self.name = name
        self.socket = socket
        self.backlog = backlog
        self.timeoutSeconds = timeoutSeconds
        self.macros = macros
        self.quietStages = quietStages
        self.skippedStages = skippedStages
    }

    /// The `SMFIP_NR_*` flags to ask for: the quiet stages' flags; over TCP
    /// only those of stages whose packet leaves with the MTA's next command.
    var noReplySteps: UInt {
        let stages = isUnixSocket ? quietStages : quietStages.filter(\.unansweredLeavesWithTheNextCommand)
        return stages.reduce(0) { $0 | ($1.noReplyFlag ?? 0) }
    }

    /// The `SMFIP_NO*` flags to ask for: the skipped stages' flags, on a unix
    /// socket only, and only for stages that are quiet as well.
    var skipSteps: UInt {
        guard isUnixSocket else { return 0 }
        return skippedStages.intersection(quietStages).reduce(0) { $0 | ($1.skipFlag ?? 0) }
    }

    private var isUnixSocket: Bool {
        if case .unix = socket { return true }
        return false
    }
}

public enum MilterError: Error, Equatable, CustomStringConvertible {
    case alreadyRegistered
    case libmilterRefused(String)
    case cannotOpenSocket(SocketSpec, errno: Int32)

    public var description: String {
        switch self {
        case .alreadyRegistered:
            "a milter is already registered in this process"
        case .libmilterRefused(let call):
            "libmilter refused \(call)"
        case .cannotOpenSocket(let socket, let code):
            "cannot open milter socket \(socket): \(String(cString: strerror(code)))"
        }
    }
}

/// libmilter, registered and listening. libmilter is process-wide: there is
/// at most one `Milter` per process.
///
/// `smfi_main` blocks until the milter stops, so `run` gives it a dedicated
/// thread, never a thread of Swift's cooperative pool.
public final class Milter: Sendable {
    public let settings: MilterSettings
    /// How many TCP listening sockets got TCP_NODELAY (0 for unix sockets).
    public let tcpNoDelayListeners: Int
    private let thread = NIOLockedValueBox<pthread_t?>(nil)

    /// Registers the filter and opens its socket, so that the caller can set
    /// the socket's owner and mode and drop privileges before serving.
    public init(settings: MilterSettings, factory: any MilterSessionFactory) throws(MilterError) {
        let registration = Registration(
            factory: factory, macros: settings.macros, noReplySteps: settings.noReplySteps, skipSteps: settings.skipSteps,
            readsHeaders: settings.readsHeaders, readsBody: settings.readsBody
        )
        guard Registration.install(registration) else {
            throw .alreadyRegistered
        }
        self.settings = settings
        guard CMilterShim_setconn(settings.socket.description) == miSuccess else { throw .libmilterRefused("smfi_setconn") }
        guard smfi_settimeout(settings.timeoutSeconds) == miSuccess else { throw .libmilterRefused("smfi_settimeout") }
        guard smfi_setbacklog(settings.backlog) == miSuccess else { throw .libmilterRefused("smfi_setbacklog") }

        var description = smfiDesc()
        // libmilter copies the description but keeps the name pointer: give it one for the process's life.
        description.xxfi_name = strdup(settings.name)
        description.xxfi_version = Int32(SMFI_VERSION)
        description.xxfi_flags = MilterFlags.addHeaders | MilterFlags.setSymlist
        description.xxfi_negotiate = Callbacks.negotiate
        description.xxfi_connect = Callbacks.connect
        description.xxfi_helo = Callbacks.helo
        description.xxfi_envfrom = Callbacks.envfrom
        description.xxfi_envrcpt = Callbacks.envrcpt
        description.xxfi_data = Callbacks.data
        description.xxfi_header = Callbacks.header
        description.xxfi_body = Callbacks.body
        description.xxfi_eom = Callbacks.eom
        description.xxfi_abort = Callbacks.abort
        description.xxfi_close = Callbacks.close
        guard smfi_register(description) == miSuccess else { throw .libmilterRefused("smfi_register") }

        var nodelay: CInt = 0
        errno = 0
        guard CMilterShim_opensocket(true, &nodelay) == miSuccess else {
            throw .cannotOpenSocket(settings.socket, errno: errno == 0 ? EADDRINUSE : errno)
        }
        tcpNoDelayListeners = Int(nodelay)
    }

    /// Starts `smfi_main` on its own thread; `onExit` runs on that thread when it returns
    /// (after `stop()`, or when libmilter's signal thread stopped it), with true on success.
    public func run(onExit: @escaping @Sendable (Bool) -> Void) {
        guard let handle = startThread({ onExit(smfi_main() == miSuccess) }) else {
            onExit(false)
            return
        }
        thread.withLockedValue { $0 = handle }
    }

    /// Asks libmilter to stop accepting connections; `smfi_main` then returns.
    /// libmilter also stops serving the sessions in progress (their next
    /// command is never answered), so a caller that wants them finished lets
    /// them end first.
    ///
    /// libmilter's accept loop holds the lock `smfi_stop` needs while it waits
    /// up to five seconds in `select`, and looks at the stop flag only between
    /// waits. So `smfi_stop` runs on a helper thread while we wake the loop with
    /// throw-away connections until it has taken effect: a stop takes
    /// milliseconds instead of up to ten seconds.
    public func stop() {
        let stopped = Atomic<Bool>(false)
        guard let helper = startThread({
            _ = smfi_stop()
            stopped.store(true, ordering: .releasing)
        }) else {
            _ = smfi_stop()
            return
        }
        var attempts = 0
        while !stopped.load(ordering: .acquiring), attempts < 300 { // 6 s: longer than libmilter's 5 s wait
            ListenerNudge.nudge(settings.socket)
            usleep(20_000)
            attempts += 1
        }
        pthread_join(helper, nil)
        ListenerNudge.nudge(settings.socket) // the loop re-checks the flag once its next wait ends
    }

    /// Waits for the `smfi_main` thread to end. Call from a thread that may block.
    public func join() {
        guard let handle = thread.withLockedValue({ current -> pthread_t? in
            defer { current = nil }
            return current
        }) else { return }
        pthread_join(handle, nil)
    }
}

/// Runs `body` on a new joinable pthread (not a thread of Swift's cooperative
/// pool, which must never block in libmilter). Nil if the thread can't start.
private func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
    let box = Unmanaged.passRetained(ThreadBody(body)) // released once, by the thread or below
    var handle = pthread_t()
    let created = pthread_create(&handle, nil, { raw in
        Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box.toOpaque())
    guard created == 0 else {
        box.release()
        return nil
    }
    return handle
}

private final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}
