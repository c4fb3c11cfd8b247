import Logging

/// One part of the daemon, with what starts it and what stops it.
struct DaemonService {
    let name: String
    let start: () -> Void
    let stop: () -> Void

    /// A loop that runs as a task from start to stop. `beforeStart` runs
    /// before the loop does (a load it must finish first), `beforeCancel` at
    /// stop while the loop still runs (a last flush), `afterCancel` once it
    /// was told to end (a last write of what it kept).
    static func task(
        _ name: String, priority: TaskPriority? = nil, _ body: @escaping @Sendable () async -> Void,
        beforeStart: @escaping () -> Void = {}, beforeCancel: @escaping () -> Void = {}, afterCancel: @escaping () -> Void = {}
    ) -> DaemonService {
        let handle = TaskHandle()
        return DaemonService(name: name, start: {
            beforeStart()
            handle.task = Task(priority: priority, operation: body)
        }, stop: {
            beforeCancel()
            handle.task?.cancel()
            afterCancel()
        })
    }

    /// Holds the task between the start and the stop closures. Both run on
    /// the daemon's main thread, so nothing else touches it.
    private final class TaskHandle {
        var task: Task<Void, Never>?
    }
}

/// The daemon's parts, started in the order they are added and stopped in
/// the reverse order: each stops while everything it uses still runs (the
/// milter before the tests it queues, the tests before the database they
/// write). swift-service-lifecycle has the same model, but it also takes over
/// SIGTERM and SIGHUP, which relay-milter must keep from libmilter's signal
/// thread itself (SignalPipe, CShim/CMilterShim/signals.c); so it is these
/// few lines instead.
final class ServiceGraph {
    private var running: [DaemonService] = []
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func start(_ service: DaemonService) {
        service.start()
        running.append(service)
        logger.debug("service started", metadata: ["service": "\(service.name)"])
    }

    /// The parts started so far, last first.
    var stopOrder: [String] { running.reversed().map(\.name) }

    func stopAll() {
        while let service = running.popLast() {
            service.stop()
            logger.debug("service stopped", metadata: ["service": "\(service.name)"])
        }
    }
}
