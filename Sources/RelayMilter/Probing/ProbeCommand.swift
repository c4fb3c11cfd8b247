import Foundation
import NIOPosix
import RelayConfig
import RelayPolicy
import RelayProbe
import RelayProbeNIO
import VerdictStore

/// `relay-milter probe HOST[:PORT]`: runs the relay test battery now.
public enum ProbeCommand {
    public struct BadTarget: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "\"\(text)\" is not IP[:PORT] or [IPv6]:PORT" }
    }

    /// Parses `192.0.2.1`, `192.0.2.1:2525`, `2001:db8::1`, `[2001:db8::1]:2525`.
    public static func target(_ text: String, config: RelayMilterConfig.Probe) throws(BadTarget) -> ProbeTarget {
        let parsed = try target(text, defaultPort: config.port)
        let canonical = IPAddress(parsed.address).map { "\($0)" } ?? parsed.address
        return ProbeTarget(address: canonical, port: parsed.port, sourceAddress: config.sourceAddress.map { "\($0)" })
    }

    static func target(_ text: String, defaultPort: Int) throws(BadTarget) -> ProbeTarget {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw BadTarget(text: text) }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            let port = rest.isEmpty ? defaultPort : (rest.hasPrefix(":") ? Int(rest.dropFirst()) : nil)
            guard IPAddress(host) != nil, let port, (1...65535).contains(port) else { throw BadTarget(text: text) }
            return ProbeTarget(address: host, port: port)
        }
        if IPAddress(text) != nil { return ProbeTarget(address: text, port: defaultPort) }
        let parts = text.split(separator: ":")
        guard parts.count == 2, IPAddress(parts[0]) != nil, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw BadTarget(text: text)
        }
        return ProbeTarget(address: String(parts[0]), port: port)
    }

    public struct BadSource: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "--source \"\(text)\" is not an IP address" }
    }

    /// `--source`: the local address the tests come from, for this run.
    public static func setSource(_ text: String, in config: inout RelayMilterConfig) throws(BadSource) {
        guard let address = IPAddress(text) else { throw BadSource(text: text) }
        config.probe.sourceAddress = address
    }

    /// Why the tests may not show how the target treats outside clients, if
    /// they may not: a host trusts its own addresses and loopback (Postfix's
    /// and Debian's default mynetworks), so tests from there can find an open
    /// relay that refuses every outsider. Nil when the source is elsewhere.
    public static func sourceWarning(target: String, source: String?) -> String? {
        guard let targetAddress = IPAddress(target) else { return nil }
        let sourceAddress = source.flatMap { IPAddress($0) }
        if let sourceAddress, sourceAddress == targetAddress {
            return "the tests come from \(sourceAddress), the target's own address, which it most likely trusts: "
                + "an `open` verdict may only mean it relays for itself; use --source with an address outside its trusted networks"
        }
        guard isLoopback(targetAddress), sourceAddress.map(isLoopback) ?? true else { return nil }
        let from = sourceAddress.map { "\($0)" } ?? "loopback (the system's choice)"
        return "the tests come from \(from) to a loopback target, which most MTAs trust (Postfix's default mynetworks): "
            + "an `open` verdict may only mean it relays for local clients; use --source with an address outside its trusted networks"
    }

    private static func isLoopback(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let value): value >> 24 == 127
        case .v6(let value): value == 1
        }
    }

    /// Writes the report to the verdict cache, as the daemon would.
    public static func store(_ report: ProbeReport, target: ProbeTarget, config: RelayMilterConfig) throws {
        let store = try VerdictStore(path: config.cache.path)
        let record = VerdictRecord(report, host: target.address, ttlSeconds: config.cache.ttlSeconds, now: Date())
        try store.saveAsThisInstance(record, config: config)
    }

    /// Runs one test to completion on a private event loop; blocks the calling thread.
    public static func run(_ target: ProbeTarget, config: RelayMilterConfig, progress: ProbeProgressLine? = nil) -> ProbeReport {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let prober = SMTPProber(group: group)
        var onProgress: (@Sendable (ProbeProgress) -> Void)?
        if let progress { onProgress = { progress.update($0) } }
        let future = prober.startProbe(target, configuration: config.probeSettings.machineConfiguration(for: target), timeouts: config.probe.timeouts,
                                       progress: onProgress)
        defer { progress?.finish() }
        return (try? future.wait()) ?? ProbeReport(verdict: .error, outcomes: [], banner: "", hostname: nil, detail: "probe aborted")
    }
}
