import Foundation
import RelayConfig

/// `relay-milter stats`: asks the running daemon over its HTTP listener.
public enum StatsClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func fetch(config: RelayMilterConfig, since: String) throws(Failure) -> StatsReport {
        guard let seconds = try? DurationText.seconds(since), seconds >= 60 else {
            throw Failure(description: "--since \"\(since)\" is not a duration from a minute to \(DurationText.text(DurationText.maximumSeconds)), such as 1h, 24h or 7d")
        }
        guard config.metrics.enabled else {
            throw Failure(description: "[metrics] is disabled in the config; the daemon has no listener to ask")
        }
        let address = "\(config.metrics.host.contains(":") ? "[\(config.metrics.host)]" : config.metrics.host):\(config.metrics.port)"
        let status: Int, body: [UInt8]
        do {
            (status, body) = try LoopbackHTTPGet.fetch(host: config.metrics.host, port: config.metrics.port, path: "/stats?since=\(seconds)")
        } catch {
            throw Failure(description: "cannot reach relay-milter at http://\(address)/stats (\(LoopbackHTTPGet.reason(error))): "
                + "is it running? (it answers at this config's [metrics] listen)")
        }
        guard status == 200 else {
            throw Failure(description: "relay-milter at http://\(address)/stats answered with status \(status)")
        }
        do {
            return try JSONDecoder().decode(StatsReport.self, from: Data(body))
        } catch {
            throw Failure(description: "unexpected answer from http://\(address)/stats: \(error)")
        }
    }

    public static func json(_ report: StatsReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(report)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }
}
