import MilterKit

/// The session a connection gets while relay-milter is stopping: it tempfails
/// at connect, so the MTA defers that SMTP session (the client retries), and
/// the sessions already open can finish before libmilter is stopped.
/// It holds no state, so every such connection shares the one instance.
final class ClosedForStopSession: MilterSession {
    static let shared = ClosedForStopSession()
    static let reply = SMTPReply(code: "451", enhancedCode: "4.3.2", lines: ["relay-milter is restarting; try again later"])

    func connect(_ info: ConnectInfo) -> MilterResponse { .tempfail(Self.reply) }
    func helo(_ name: String, macros: Macros) -> MilterResponse { .tempfail(Self.reply) }
    func mailFrom(_ sender: EnvelopeAddress) -> MilterResponse { .tempfail(Self.reply) }
    func recipient(_ recipient: EnvelopeAddress) -> MilterResponse { .tempfail(Self.reply) }
    func data(macros: Macros) -> MilterResponse { .tempfail(Self.reply) }
    func endOfMessage(macros: Macros) -> (MilterResponse, [HeaderField]) { (.tempfail(Self.reply), []) }
    func abort() {}
    func close() {}
}
