import Foundation
import RelayProbe
import NIOConcurrencyHelpers

/// `probe`'s progress on a terminal: one line on standard error, rewritten
/// as tests get their answers and when the server makes us reconnect, and
/// erased before the report. It shows only once the test has run a second,
/// so a quick probe prints nothing but its report; `probe` makes none at all
/// under `--json` or when standard error is not a terminal.
public final class ProbeProgressLine: Sendable {
    private struct State {
        var answered = 0
        var relayed = 0
        var shown = false
    }

    private let target: String
    private let started = ContinuousClock.now
    // NIO's lock, as everywhere here: ThreadSanitizer cannot see Synchronization.Mutex's futex.
    private let state = NIOLockedValueBox(State())

    public init(target: String) {
        self.target = target
    }

    /// A progress line on standard error, if that is a terminal.
    public static func forTerminal(target: String) -> ProbeProgressLine? {
        isatty(STDERR_FILENO) == 1 ? ProbeProgressLine(target: target) : nil
    }

    public func update(_ step: ProbeProgress) {
        let line: String? = state.withLockedValue { state in
            switch step {
            case .testSettled(_, let total, let outcome):
                state.answered += 1
                if outcome.rcptAccepted { state.relayed += 1 }
                return "Testing \(target): \(state.answered) of \(total) tests answered, \(state.relayed) accepted"
            case .reconnecting(let pause, let why):
                return "Testing \(target): \(state.answered) tests answered; \(why): reconnecting in \(pause.components.seconds) s"
            }
        }
        guard let line, ContinuousClock.now - started >= .seconds(1) else { return }
        state.withLockedValue { $0.shown = true }
        Self.write("\r\u{1B}[K" + line)
    }

    /// Erases the line, if it was ever shown.
    public func finish() {
        if state.withLockedValue({ $0.shown }) { Self.write("\r\u{1B}[K") }
    }

    private static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Foundation.write(STDERR_FILENO, &bytes, bytes.count)
    }
}
