import Foundation
import RelayConfig
import RelayPolicy
import VerdictStore

/// `relay-milter trap ...`: the relay attempts a trap listener recorded, as
/// an admin reads them. Every field came from a stranger: terminal output is
/// made safe (`UntrustedText`), CSV cells cannot start a formula.
public struct TrapCommands {
    let store: VerdictStore

    public init(config: RelayMilterConfig) throws(CacheCommands.Failure) {
        do {
            store = try VerdictStore(path: config.cache.path)
        } catch {
            throw CacheCommands.Failure(description: "cannot open \(config.cache.path): \(error)")
        }
    }

    public enum ExportFormat: String, CaseIterable, Sendable {
        case csv, json
    }

    /// The newest attempts first, at most `limit`, of one client if named.
    public func list(client: String?, since: Date?, limit: Int, json: Bool) throws -> String {
        let attempts = try store.trapAttempts(client: try client.map(CacheCommands.host), since: since, limit: limit)
        if json { return attempts.map { Self.json($0) + "\n" }.joined() }
        let shown = UntrustedText.forTerminal
        var out = "id      time                  client                                   rcpts  domains\n"
        for attempt in attempts {
            out += "\(attempt.id ?? 0)".padding(7) + " " + HostReplyTemplate.timestamp(attempt.at).padding(21) + " "
            out += shown(attempt.client).padding(40) + " " + "\(attempt.recipientCount)".padding(6) + " "
            out += shown(attempt.recipientDomains.joined(separator: ",")) + "\n"
        }
        return out + "\(attempts.count) attempt(s)\n"
    }

    public func show(_ id: Int64) throws -> String {
        guard let attempt = try store.trapAttempt(id: id) else { throw CacheCommands.Failure(description: "no trapped attempt \(id)") }
        let shown = UntrustedText.forTerminal
        return """
            id:         \(id)
            time:       \(HostReplyTemplate.timestamp(attempt.at))
            client:     \(shown(attempt.client))
            helo:       \(shown(attempt.helo))
            sender:     \(shown(attempt.sender))
            recipients: \(attempt.recipientCount)
            domains:    \(shown(attempt.recipientDomains.joined(separator: ", ")))
            size:       \(attempt.size)
            subject:    \(shown(attempt.subject))
            message-id: \(shown(attempt.messageID))
            body:       sha256 \(attempt.bodySHA256)
            queue id:   \(shown(attempt.queueID))

            """
    }

    /// Every recorded attempt, oldest first.
    public func export(_ format: ExportFormat) throws -> String {
        let attempts = try store.trapAttempts().reversed()
        switch format {
        case .json:
            return attempts.map { Self.json($0) + "\n" }.joined()
        case .csv:
            var out = "id,time,client,helo,sender,recipients,domains,size,subject,message_id,body_sha256,queue_id\n"
            for a in attempts {
                let fields = ["\(a.id ?? 0)", HostReplyTemplate.timestamp(a.at), a.client, a.helo, a.sender, "\(a.recipientCount)",
                              a.recipientDomains.joined(separator: " "), "\(a.size)", a.subject, a.messageID, a.bodySHA256, a.queueID]
                out += fields.map { CacheCommands.csvField(UntrustedText.forCSV($0)) }.joined(separator: ",") + "\n"
            }
            return out
        }
    }

    struct JSONAttempt: Encodable {
        let id: Int64
        let time, client, helo, sender, subject, message_id, body_sha256, queue_id: String
        let recipients, size: Int
        let domains: [String]
    }

    static func json(_ a: TrapAttemptRecord) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let value = JSONAttempt(id: a.id ?? 0, time: HostReplyTemplate.timestamp(a.at), client: a.client, helo: a.helo, sender: a.sender,
                                subject: a.subject, message_id: a.messageID, body_sha256: a.bodySHA256, queue_id: a.queueID,
                                recipients: a.recipientCount, size: a.size, domains: a.recipientDomains)
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
