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

    /// Writes the report to the verdict cache, as the daemon would.
    public static func store(_ report: ProbeReport, target: ProbeTarget, config: RelayMilterConfig) throws {
        let store = try VerdictStore(path: config.cache.path)
        let record = VerdictRecord(report, host: target.address, ttlSeconds: config.cache.ttlSeconds, now: Date())
        try store.saveAsThisInstance(record, config: config)
    }

    /// Runs one test to completion on a private event loop; blocks the calling thread.
    public static func run(_ target: ProbeTarget, config: RelayMilterConfig) -> ProbeReport {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let prober = SMTPProber(group: group)
        let future = prober.startProbe(target, configuration: config.probe.machineConfiguration(for: target), timeouts: config.probe.timeouts)
        return (try? future.wait()) ?? ProbeReport(verdict: .error, outcomes: [], banner: "", hostname: nil, detail: "probe aborted")
    }
}
