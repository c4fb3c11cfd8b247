import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Takes finished log lines off the milter's callback threads and writes them
/// to stderr on a thread of its own, so that a slow reader of stderr (a full
/// pipe to journald, say) can never stall a callback, and so the MTA never
/// waits on our logging. The buffer is bounded: past `capacity` lines, new
/// lines are dropped and counted, and the count is written once there is room.
final class LogWriter: Sendable {
    static let shared = LogWriter(capacity: 50_000)

    private struct Buffer {
        var lines: [[UInt8]] = []
        var dropped = 0
        var writer = WriterState.pausing
    }

    /// What the writer thread is doing. Only a `waiting` writer is signalled
    /// for a new line; `flush` waits while lines are queued or `writing`.
    private enum WriterState {
        /// Asleep on `wakeup`, nothing queued when it looked.
        case waiting
        /// Writing the lines it took; they are no longer in `lines`.
        case writing
        /// Awake and about to look again (after its pause, or once started).
        case pausing
    }

    /// How long the writer lets lines gather after each write, so that a busy
    /// milter costs one wake-up and one write(2) per batch, not per line. The
    /// first line after a quiet spell is written at once; while lines keep
    /// coming, each waits at most this long.
    /// Measured side by side under milter-load (unix socket, 8 sessions, six
    /// alternating rounds): milter CPU per transaction 200 -> 185 us against
    /// waking the writer for every line (docs/DESIGN.md, profiling item 9).
    static let gatherMicroseconds: useconds_t = 2_000

    private let buffer = NIOLockedValueBox(Buffer())
    private let wakeup = Wakeup()
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        let thread = Thread { [self] in self.drainForever() }
        thread.start()
    }

    /// Queues one line (UTF-8, without its newline); never blocks on I/O.
    func enqueue(_ line: [UInt8]) {
        let wake = buffer.withLockedValue { buffer -> Bool in
            guard buffer.lines.count < capacity else {
                buffer.dropped += 1
                return false
            }
            buffer.lines.append(line)
            return Self.wakeIfWaiting(&buffer)
        }
        // A writer that is awake takes this line with the others after its pause.
        if wake { wakeup.signal() }
    }

    /// Whether the writer sleeps on `wakeup` and must be signalled; it counts as awake from now on.
    private static func wakeIfWaiting(_ buffer: inout Buffer) -> Bool {
        guard buffer.writer == .waiting else { return false }
        buffer.writer = .pausing
        return true
    }

    /// Writes everything queued so far before returning (at exit).
    func flush() {
        while true {
            let (pending, wake) = buffer.withLockedValue { buffer in
                (!buffer.lines.isEmpty || buffer.writer == .writing, Self.wakeIfWaiting(&buffer))
            }
            if wake { wakeup.signal() }
            guard pending else { return }
            usleep(1_000)
        }
    }

    private func drainForever() {
        while true {
            let (lines, dropped) = buffer.withLockedValue { buffer -> ([[UInt8]], Int) in
                let taken = (buffer.lines, buffer.dropped)
                buffer.lines.removeAll(keepingCapacity: true)
                buffer.dropped = 0
                buffer.writer = taken.0.isEmpty && taken.1 == 0 ? .waiting : .writing
                return taken
            }
            if lines.isEmpty, dropped == 0 {
                wakeup.wait()
            } else {
                // One write(2) per batch, not per line.
                var batch: [UInt8] = []
                batch.reserveCapacity(lines.reduce(0) { $0 + $1.count + 1 })
                for line in lines {
                    batch += line
                    batch.append(UInt8(ascii: "\n"))
                }
                writeAll(batch)
                if dropped > 0 { printToStandardError("level=warning msg=\"log lines dropped: stderr could not keep up\" log.dropped=\(dropped)") }
                buffer.withLockedValue { $0.writer = .pausing }
                usleep(Self.gatherMicroseconds)
            }
        }
    }
}

/// Writes every byte to stderr, retrying short writes and EINTR; gives up on other errors.
private func writeAll(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = write(STDERR_FILENO, raw.baseAddress! + offset, raw.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}

/// A counting wake-up for one waiting thread (a POSIX semaphore).
///
/// `@unchecked Sendable`: `sem_t` is designed to be shared between threads;
/// it is allocated once and never freed (the writer lives as long as the process).
private final class Wakeup: @unchecked Sendable {
    private let semaphore: UnsafeMutablePointer<sem_t> = {
        let pointer = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        sem_init(pointer, 0, 0)
        return pointer
    }()

    func signal() { sem_post(semaphore) }

    func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }
}
