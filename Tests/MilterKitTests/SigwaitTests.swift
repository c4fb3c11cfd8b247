import Foundation
import MilterKit
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The shim's `sigwait` (CShim/CMilterShim/signals.c), which every caller in
/// this process gets instead of the C library's, as in the daemon.
struct SigwaitTests {
    @Test func aWaitForLibmiltersSignalsNeverTakesOne() {
        let state = WaiterState()
        let waiter = Thread {
            var libmilters = sigset_t()
            sigemptyset(&libmilters)
            for signal in [SIGHUP, SIGTERM, SIGINT] { sigaddset(&libmilters, signal) }
            pthread_sigmask(SIG_BLOCK, &libmilters, nil) // as libmilter does before it starts the thread
            state.thread.store(pthread_self(), ordering: .releasing) // pthread_t is an integer on Linux
            var taken: Int32 = 0
            _ = sigwait(&libmilters, &taken)
            state.returned.store(true, ordering: .releasing)
        }
        waiter.start()
        while state.thread.load(ordering: .acquiring) == 0 { usleep(1_000) }
        // Sent to that thread alone: libc's sigwait would take it at once.
        #expect(pthread_kill(state.thread.load(ordering: .acquiring), SIGHUP) == 0)
        usleep(300_000)
        // The thread stays parked for the life of the test process, its SIGHUP pending and blocked.
        let returned = state.returned.load(ordering: .acquiring)
        #expect(!returned)
    }

    @Test func anyOtherSetIsWaitedForAsTheCLibraryWould() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR2)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &set, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        #expect(pthread_kill(pthread_self(), SIGUSR2) == 0)
        var taken: Int32 = 0
        #expect(sigwait(&set, &taken) == 0)
        #expect(taken == SIGUSR2)
    }
}

private final class WaiterState: Sendable {
    let thread = Atomic<UInt>(0)
    let returned = Atomic<Bool>(false)
}
