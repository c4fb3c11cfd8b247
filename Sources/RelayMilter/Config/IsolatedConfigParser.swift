import Foundation
#if canImport(Glibc)
import Glibc
import RelayConfig
#endif

/// Reads a config file after a child process has parsed the same bytes, so
/// that a file the TOML parser cannot cope with costs an error, never the
/// process.
///
/// TOMLKit bundles the C++ toml++ parser, whose assertions abort the process
/// on some malformed input instead of reporting a syntax error (fuzz-config
/// found several; `TOMLParserGuard` catches the known ones, but the fuzzer
/// keeps finding new ones). A SIGHUP after a half-finished edit must not stop
/// the milter of a live MX. So the child, `relay-milter parse-config` (a
/// hidden subcommand), parses the bytes first and exits 0, or 78 with the
/// error; if it dies of a signal or hangs, the file is refused with a clear
/// error; only a file it parsed is parsed here.
public struct IsolatedConfigParser: Sendable {
    /// This program, resolved when the parser is made: after dropping root,
    /// `/proc/self/exe` can no longer be read.
    public let executable: String
    /// How long the child may take before it is killed and the file refused.
    public static let timeoutSeconds = 10
    /// What the child exits with when the file is wrong (EX_CONFIG).
    public static let configErrorStatus: Int32 = 78

    public init() {
        self.init(executable: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
    }

    /// Another program as the child (tests).
    init(executable: String) {
        self.executable = executable
    }

    public func load(path: String) throws(ConfigError) -> RelayMilterConfig {
        let source = try ConfigLoader.readFile(path)
        try parseInChild(source, file: path)
        return try ConfigLoader.parse(source, file: path)
    }

    func parseInChild(_ source: String, file: String) throws(ConfigError) {
        _ = brokenPipesIgnored
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["parse-config", "--file", file]
        let input = Pipe(), errors = Pipe()
        child.standardInput = input
        child.standardOutput = FileHandle.nullDevice
        child.standardError = errors
        do {
            try child.run()
        } catch {
            throw ConfigError(file: file, line: nil, message: "cannot start \(executable) to check the file: \(error)")
        }
        let watchdog = DispatchWorkItem { kill(child.processIdentifier, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Self.timeoutSeconds), execute: watchdog)
        // A child that dies early makes this write fail (EPIPE), not kill us.
        try? input.fileHandleForWriting.write(contentsOf: Data(source.utf8))
        try? input.fileHandleForWriting.close()
        let report = String(decoding: (try? errors.fileHandleForReading.readToEnd()) ?? Data(), as: UTF8.self)
        child.waitUntilExit()
        watchdog.cancel()

        switch (child.terminationReason, child.terminationStatus) {
        case (.exit, 0):
            return
        case (.exit, Self.configErrorStatus):
            throw Self.configError(fromReport: report, file: file)
        case (.uncaughtSignal, let signal):
            throw ConfigError(file: file, line: nil, message: signal == SIGKILL
                ? "the TOML parser did not finish within \(Self.timeoutSeconds) s; check the file's syntax"
                : "the TOML parser crashed on this file (signal \(signal), a bug in the toml++ library); check the file's syntax")
        case (_, let status):
            throw ConfigError(file: file, line: nil, message: "the config check exited with status \(status): \(report)")
        }
    }

    /// What `parse-config` writes to stderr for a `ConfigError`: the line
    /// number (or `-`) on the first line, the message after it.
    public static func report(_ error: ConfigError) -> String {
        "\(error.line.map(String.init) ?? "-")\n\(error.message)"
    }

    static func configError(fromReport report: String, file: String) -> ConfigError {
        let parts = report.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return ConfigError(file: file, line: nil, message: report) }
        return ConfigError(file: file, line: Int(parts[0]), message: String(parts[1]))
    }
}

/// Writing to a child that has exited raises SIGPIPE, which would end this
/// process. Ignored once, process-wide, as NIO already does on Linux as soon
/// as it opens a socket.
private let brokenPipesIgnored: Bool = {
    signal(SIGPIPE, SIG_IGN)
    return true
}()
