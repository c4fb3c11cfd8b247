import Foundation
import Logging
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Formats one logfmt line per event and hands it to the `LogWriter`, which
/// writes it to stderr off the caller's thread:
/// `ts=2026-11-29T17:00:00Z level=info msg="relay decision" client.address=192.0.2.1 ...`.
/// Keys are dotted metadata keys, sorted; values are quoted when they contain
/// spaces, quotes or `=`, and control characters are escaped, so that any
/// log pipeline can split the fields.
public struct LogfmtHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set {
            // A session sets its client's fields one by one at connect and HELO:
            // room for them at once, not a regrowth at each.
            if metadata.isEmpty { metadata.reserveCapacity(8) }
            metadata[key] = newValue
        }
    }

    public func log(event: LogEvent) {
        // Formatting happens here; the write(2) happens on the log writer's thread.
        LogWriter.shared.enqueue(line(for: event))
    }

    /// The event as one logfmt line, without its newline. Built as bytes: this
    /// runs on a milter callback for every decision.
    func line(for event: LogEvent) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(512)
        line += "ts=".utf8
        Self.appendTimestamp(to: &line)
        line += " level=".utf8
        line += event.level.rawValue.utf8
        line += " msg=".utf8
        Self.appendQuoted(event.message.description, to: &line)
        // The event's fields, then the handler's that the event does not override:
        // the values in one array, (key, position) pairs in another to be sorted.
        // Sorting (String, MetadataValue) pairs copied each value it moved through
        // generic value witnesses, about a fifth of this function (log-line-bench
        // under perf). Plain loops, not lazy chains: this runs for every decision.
        let count = metadata.count + (event.metadata?.count ?? 0) + 1
        var values: [Logger.MetadataValue] = []
        var keys: [(key: String, position: Int)] = []
        values.reserveCapacity(count)
        keys.reserveCapacity(count)
        func add(_ key: String, _ value: Logger.MetadataValue) {
            keys.append((key, values.count))
            values.append(value)
        }
        if let own = event.metadata {
            for (key, value) in own { add(key, value) }
            // `index(forKey:)`, not `own[key] == nil`: that copies the value out and destroys it again.
            for (key, value) in metadata where own.index(forKey: key) == nil { add(key, value) }
        } else {
            for (key, value) in metadata { add(key, value) }
        }
        if let error = event.error { add("error", "\(error)") }
        keys.sort { $0.key < $1.key }
        for (key, position) in keys {
            line.append(UInt8(ascii: " "))
            line += key.utf8
            line.append(UInt8(ascii: "="))
            if case .string(let text) = values[position] {
                Self.appendQuoted(text, to: &line)
            } else {
                Self.appendQuoted(values[position].description, to: &line)
            }
        }
        return line
    }

    static func quoted(_ value: String) -> String {
        var bytes: [UInt8] = []
        appendQuoted(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `value`, in quotes with escapes when it holds a space, a quote, `=`,
    /// a backslash or a control character; as it is otherwise.
    static func appendQuoted(_ value: String, to line: inout [UInt8]) {
        // One scan over the string's own bytes (`withUTF8` makes a bridged
        // string contiguous first; a native one is read in place). Most
        // values need no quotes and are copied as they are.
        var value = value
        value.withUTF8 { bytes in
            guard bytes.isEmpty || bytes.contains(where: needsQuotes) else {
                line.append(contentsOf: bytes)
                return
            }
            line.append(UInt8(ascii: "\""))
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): line += #"\""#.utf8
                case UInt8(ascii: "\\"): line += #"\\"#.utf8
                case UInt8(ascii: "\n"): line += #"\n"#.utf8
                case 0..<0x20, 0x7F: line += "\\x\(String(byte, radix: 16))".utf8
                default: line.append(byte)
                }
            }
            line.append(UInt8(ascii: "\""))
        }
    }

    /// A byte that splits a logfmt field or a line: space, quote, `=`, backslash, control.
    private static func needsQuotes(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "=") || byte < 0x20
            || byte == UInt8(ascii: "\\") || byte == 0x7F
    }

    /// `2026-11-29T17:00:00.123Z`, now.
    static func timestamp() -> String {
        var bytes: [UInt8] = []
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the timestamp; the date part is formatted once per second.
    static func appendTimestamp(to line: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        line += secondStamp(now.tv_sec)
        let millis = Int(now.tv_nsec / 1_000_000)
        line.append(UInt8(ascii: "."))
        line.append(UInt8(ascii: "0") + UInt8(millis / 100))
        line.append(UInt8(ascii: "0") + UInt8(millis / 10 % 10))
        line.append(UInt8(ascii: "0") + UInt8(millis % 10))
        line.append(UInt8(ascii: "Z"))
    }

    private static let lastSecond = NIOLockedValueBox<(second: Int, text: [UInt8])>((-1, []))

    private static func secondStamp(_ second: Int) -> [UInt8] {
        if let cached = lastSecond.withLockedValue({ $0.second == second ? $0.text : nil }) { return cached }
        var parts = tm()
        var seconds = second
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let text = buffer[..<count].map { UInt8(bitPattern: $0) }
        lastSecond.withLockedValue { $0 = (second, text) }
        return text
    }
}

/// Untrusted text (addresses, HELO names) cut to a length that keeps a log line readable.
func truncatedForLog(_ text: String, limit: Int = 256) -> String {
    // No more bytes than the limit means no more characters either.
    guard text.utf8.count > limit, text.count > limit else { return text }
    return String(text.prefix(limit)) + "...(\(text.utf8.count) bytes)"
}
