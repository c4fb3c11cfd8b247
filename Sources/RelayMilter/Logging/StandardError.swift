#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` and a newline to stderr in one write(2): for messages before
/// logging is set up, and for command-line errors.
public func printToStandardError(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    _ = write(STDERR_FILENO, &bytes, bytes.count)
}
