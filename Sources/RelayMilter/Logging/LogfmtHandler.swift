import Foundation
import Logging
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
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "ts=\(Self.timestamp()) level=\(event.level.rawValue) msg=\(Self.quoted(event.message.description))"
        var merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if let error = event.error { merged["error"] = "\(error)" }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(Self.quoted(value.description))"
        }
        // Formatting happens here; the write(2) happens on the log writer's thread.
        LogWriter.shared.enqueue(line)
    }

    static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.value < 0x20 || $0 == "\\" }
        guard needsQuotes else { return value }
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: result += "\\x" + String(scalar.value, radix: 16)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let millis = Int(now.tv_nsec / 1_000_000)
        let base = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fraction = String(millis)
        return base + "." + String(repeating: "0", count: 3 - fraction.count) + fraction + "Z"
    }
}

/// Untrusted text (addresses, HELO names) cut to a length that keeps a log line readable.
func truncatedForLog(_ text: String, limit: Int = 256) -> String {
    guard text.count > limit else { return text }
    return String(text.prefix(limit)) + "...(\(text.utf8.count) bytes)"
}
