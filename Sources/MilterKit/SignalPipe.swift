import CMilterShim
#if canImport(Glibc)
import Glibc
#endif

/// Who owns the process's signals, and why it is us.
///
/// libmilter's `smfi_main` blocks SIGHUP, SIGTERM and SIGINT in its own thread
/// and starts a thread that `sigwait`s for them, treating SIGHUP like SIGTERM:
/// stop. We want SIGHUP to reload. So before anything else starts, the process
/// installs handlers (in C, async-signal-safe: one `write`) that put the signal
/// number on a pipe, and keeps these signals unblocked on the main thread.
/// libmilter's thread never takes one: the shim's `sigwait` parks it (see
/// CShim/CMilterShim/signals.c). Should libmilter stop by itself anyway, the
/// daemon treats that as a failure and exits non-zero, so that its service
/// manager restarts it.
public final class SignalPipe: Sendable {
    public static let handled: [Int32] = [SIGHUP, SIGTERM, SIGINT]
    private let readFD: Int32
    private let writeFD: Int32

    public init() throws(MilterError) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw .libmilterRefused("pipe") }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        readFD = fds[0]
        writeFD = fds[1]
        let result = SignalPipe.handled.withUnsafeBufferPointer {
            CMilterShim_install_signal_pipe(fds[1], $0.baseAddress, $0.count)
        }
        guard result == 0 else { throw .libmilterRefused("sigaction") }
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for signal in SignalPipe.handled { sigaddset(&unblock, signal) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// Blocks until a signal arrives and returns its number. Call from a thread that may block.
    public func next() -> Int32 {
        var byte: UInt8 = 0
        while true {
            let count = read(readFD, &byte, 1)
            if count == 1 { return Int32(byte) }
            if count < 0, errno == EINTR { continue }
            return SIGTERM // the pipe broke: treat as a request to stop
        }
    }

    /// Takes the arrivals of `signal` already waiting behind the one just
    /// handled, so that a burst is handled once; returns the first other
    /// signal found on the way, which the caller must handle next.
    public func skipWaiting(_ signal: Int32) -> Int32? {
        var entry = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        while poll(&entry, 1, 0) == 1 {
            var byte: UInt8 = 0
            guard read(readFD, &byte, 1) == 1 else { return nil }
            if Int32(byte) != signal { return Int32(byte) }
        }
        return nil
    }

    /// Wakes `next()` with `code` as if that signal had arrived; 0 is never a signal,
    /// so callers use it to say "the milter stopped by itself".
    public func post(_ code: Int32) {
        var byte = UInt8(truncatingIfNeeded: code)
        _ = write(writeFD, &byte, 1)
    }
}
