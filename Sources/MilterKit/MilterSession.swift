/// One MTA connection's view of the milter protocol.
///
/// libmilter calls one connection's callbacks strictly one after another (the
/// MTA waits for each reply), but possibly on different worker threads, so a
/// session needs no lock of its own yet must not use thread-locals. Callbacks
/// run on libmilter's threads and must not block: no disk, no network, no
/// waiting on async work.
public protocol MilterSession: AnyObject, Sendable {
    func connect(_ info: ConnectInfo) -> MilterResponse
    func helo(_ name: String, macros: Macros) -> MilterResponse
    func mailFrom(_ sender: EnvelopeAddress) -> MilterResponse
    /// Also called for recipients the MTA already rejected, when it offers that
    /// (`SMFIP_RCPT_REJ`); their `{rcpt_mailer}` is `error` and the reply is ignored.
    func recipient(_ recipient: EnvelopeAddress) -> MilterResponse
    func data(macros: Macros) -> MilterResponse
    /// One header field, in order; only when `MilterSettings.readsHeaders` asked for them.
    func header(name: String, value: String) -> MilterResponse
    /// A chunk of the body, in order; only when `MilterSettings.readsBody` asked
    /// for it. The bytes are valid for the call only.
    func body(_ chunk: UnsafeRawBufferPointer) -> MilterResponse
    /// The headers returned are added before the response is sent.
    func endOfMessage(macros: Macros) -> (MilterResponse, [HeaderField])
    /// The message was aborted (RSET, dropped connection): reset per-message state.
    func abort()
    /// The connection ended. May come without `connect` (negotiation failed).
    func close()
}

extension MilterSession {
    /// Sessions that read no headers never get one (the MTA skips them).
    public func header(name: String, value: String) -> MilterResponse { .continue }
    /// Sessions that read no body never get one (the MTA skips it).
    public func body(_ chunk: UnsafeRawBufferPointer) -> MilterResponse { .continue }
}

/// Makes a session for each MTA connection. Called on a libmilter thread.
public protocol MilterSessionFactory: Sendable {
    func makeSession() -> any MilterSession
}
