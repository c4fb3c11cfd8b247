import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `relay-milter stats`: asks the running daemon over its HTTP listener.
public enum StatsClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func fetch(config: RelayMilterConfig, since: String) throws(Failure) -> StatsReport {
        guard let seconds = ConfigLoader.duration(since), seconds >= 60 else {
            throw Failure(description: "--since \"\(since)\" is not a duration of a minute or more, such as 1h, 24h or 7d")
        }
        guard config.metrics.enabled else {
            throw Failure(description: "[metrics] is disabled in the config; the daemon has no listener to ask")
        }
        let host = config.metrics.host.contains(":") ? "[\(config.metrics.host)]" : config.metrics.host
        guard let url = URL(string: "http://\(host):\(config.metrics.port)/stats?since=\(seconds)") else {
            throw Failure(description: "bad listener address \(host):\(config.metrics.port)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw Failure(description: "cannot reach relay-milter at \(url.absoluteString): is it running? (\(error.localizedDescription))")
        }
        do {
            return try JSONDecoder().decode(StatsReport.self, from: data)
        } catch {
            throw Failure(description: "unexpected answer from \(url.absoluteString): \(error)")
        }
    }

    public static func json(_ report: StatsReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(report)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }
}
