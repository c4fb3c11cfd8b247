#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Background work yields the CPU to the milter's callbacks, which the MTA
/// waits on. On Linux a thread's nice value is its own (threads are tasks),
/// so this lowers only the calling thread. Failure leaves the priority as it
/// was, which is harmless.
enum ThreadPriority {
    /// The nice value of threads doing background work: open-relay tests.
    static let background: Int32 = 10

    static func lowerCurrentThread(to nice: Int32 = background) {
        // `who` 0 is the calling thread on Linux, not the whole process.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
    }

    /// Lowers the priority of every thread of `group`.
    static func lower(_ group: any EventLoopGroup, to nice: Int32 = background) {
        for loop in group.makeIterator() {
            try? loop.submit { lowerCurrentThread(to: nice) }.wait()
        }
    }
}
