import CMilter
import CMilterShim
#if canImport(Glibc)
import Glibc
#endif

/// The `@convention(c)` trampolines libmilter calls. Each finds the connection's
/// context and hands a Swift value to its session; none of them blocks.
enum Callbacks {
    static let negotiate: @convention(c) (
        OpaquePointer?, UInt, UInt, UInt, UInt,
        UnsafeMutablePointer<UInt>?, UnsafeMutablePointer<UInt>?, UnsafeMutablePointer<UInt>?, UnsafeMutablePointer<UInt>?
    ) -> sfsistat = { ctx, offeredActions, offeredSteps, _, _, actions, steps, reserved2, reserved3 in
        guard let registration = Registration.current else { return SMFIStatus.reject.rawValue }
        let context = ConnectionContext.attached(to: ctx, registration: registration)
        // Skip every step the relay policy never looks at; ask for refused
        // recipients too where the MTA can send them.
        let wantedSkips = (registration.readsHeaders ? 0 : MilterFlags.noHeaders) | (registration.readsBody ? 0 : MilterFlags.noBody)
            | MilterFlags.noEndOfHeaders | MilterFlags.noUnknown
        let wantedExtras = MilterFlags.rejectedRecipients
        // Ask only for what the MTA offers; without add-header, tagging is silently skipped.
        actions?.pointee = (MilterFlags.addHeaders | MilterFlags.setSymlist) & offeredActions
        let agreed = (wantedSkips | wantedExtras | registration.skipSteps | registration.noReplySteps) & offeredSteps
        steps?.pointee = agreed
        context.noReplySteps = agreed & registration.noReplySteps
        reserved2?.pointee = 0
        reserved3?.pointee = 0
        if offeredActions & MilterFlags.setSymlist != 0 {
            var taken = true
            for (stage, names) in registration.symbolLists {
                taken = CMilterShim_setsymlist(ctx, stage, names) == miSuccess && taken
            }
            context.macroListTaken = taken
        }
        return SMFIStatus.continue.rawValue
    }

    static let connect: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<sockaddr>?) -> sfsistat = { ctx, hostname, address in
        guard let registration = Registration.current else { return SMFIStatus.tempfail.rawValue }
        let context = ConnectionContext.attached(to: ctx, registration: registration)
        let (ip, port) = SocketAddressText.describe(address)
        let info = ConnectInfo(
            hostname: hostname.map { String(cString: $0) } ?? "",
            address: ip, port: port,
            macros: context.readMacros(ctx, .connect),
            macroListTaken: context.macroListTaken
        )
        return reply(ctx, context.session.connect(info), at: .connect, context)
    }

    static let helo: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?) -> sfsistat = { ctx, name in
        guard let context = ConnectionContext.existing(for: ctx) else { return SMFIStatus.continue.rawValue }
        return reply(ctx, context.session.helo(name.map { String(cString: $0) } ?? "", macros: context.readMacros(ctx, .helo)), at: .helo, context)
    }

    static let envfrom: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat = { ctx, argv in
        guard let context = ConnectionContext.existing(for: ctx) else { return SMFIStatus.tempfail.rawValue }
        context.messageOpen = true
        let (address, parameters) = arguments(argv)
        return reply(ctx, context.session.mailFrom(EnvelopeAddress(address: address, parameters: parameters, macros: context.readMacros(ctx, .mail))))
    }

    static let envrcpt: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat = { ctx, argv in
        guard let context = ConnectionContext.existing(for: ctx) else { return SMFIStatus.tempfail.rawValue }
        let (address, parameters) = arguments(argv)
        return reply(ctx, context.session.recipient(EnvelopeAddress(address: address, parameters: parameters, macros: context.readMacros(ctx, .rcpt))))
    }

    /// Registered although the policy needs nothing at DATA: Postfix sends a
    /// DATA-stage packet either way, and over TCP, without a reply to wait for,
    /// its next write meets Nagle and delayed ACKs (see CMilterShim_opensocket).
    /// Over a unix socket it is a no-reply stage.
    static let data: @convention(c) (OpaquePointer?) -> sfsistat = { ctx in
        guard let context = ConnectionContext.existing(for: ctx) else { return SMFIStatus.continue.rawValue }
        return reply(ctx, context.session.data(macros: context.readMacros(ctx, .data)), at: .data, context)
    }

    /// Only called when `MilterSettings.readsHeaders` is on (else the MTA skips headers).
    static let header: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<CChar>?) -> sfsistat = { ctx, name, value in
        guard let context = ConnectionContext.existing(for: ctx) else { return SMFIStatus.continue.rawValue }
        let response = context.session.header(name: name.map { String(cString: $0) } ?? "", value: value.map { String(cString: $0) } ?? "")
        return reply(ctx, response)
    }

    /// Only called when `MilterSettings.readsBody` is on (else the MTA skips
    /// the body). The chunk is libmilter's, valid for the call only.
    static let body: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, Int) -> sfsistat = { ctx, bytes, length in
        guard let context = ConnectionContext.existing(for: ctx) else { return SMFIStatus.continue.rawValue }
        return reply(ctx, context.session.body(UnsafeRawBufferPointer(start: bytes, count: bytes == nil ? 0 : length)))
    }

    static let eom: @convention(c) (OpaquePointer?) -> sfsistat = { ctx in
        guard let context = ConnectionContext.existing(for: ctx) else { return SMFIStatus.continue.rawValue }
        context.messageOpen = false
        let (response, headers) = context.session.endOfMessage(macros: context.readMacros(ctx, .eom))
        for header in headers {
            _ = CMilterShim_addheader(ctx, header.name, header.value)
        }
        return reply(ctx, response)
    }

    static let abort: @convention(c) (OpaquePointer?) -> sfsistat = { ctx in
        guard let context = ConnectionContext.existing(for: ctx), context.messageOpen else { return SMFIStatus.continue.rawValue }
        context.messageOpen = false
        context.session.abort()
        return SMFIStatus.continue.rawValue
    }

    static let close: @convention(c) (OpaquePointer?) -> sfsistat = { ctx in
        ConnectionContext.detach(from: ctx)?.session.close()
        return SMFIStatus.continue.rawValue
    }

    private static func arguments(_ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> (String, [String]) {
        guard let argv else { return ("", []) }
        var values: [String] = []
        var index = 0
        while let pointer = argv[index], index < 1024 {
            values.append(String(cString: pointer))
            index += 1
        }
        return (values.first ?? "", Array(values.dropFirst()))
    }

    /// At a stage the MTA agreed not to wait on, libmilter must be told so;
    /// only quiet stages (which always continue) are ever negotiated that way.
    private static func reply(_ ctx: OpaquePointer?, _ response: MilterResponse, at stage: MilterStage,
                              _ context: ConnectionContext) -> sfsistat {
        if let flag = stage.noReplyFlag, context.noReplySteps & flag != 0 { return SMFIStatus.noReply.rawValue }
        return reply(ctx, response)
    }

    private static func reply(_ ctx: OpaquePointer?, _ response: MilterResponse) -> sfsistat {
        switch response {
        case .continue: return SMFIStatus.continue.rawValue
        case .accept: return SMFIStatus.accept.rawValue
        case .discard: return SMFIStatus.discard.rawValue
        case .reject(let text):
            if let text { setReply(ctx, text) }
            return SMFIStatus.reject.rawValue
        case .tempfail(let text):
            if let text { setReply(ctx, text) }
            return SMFIStatus.tempfail.rawValue
        }
    }

    /// Sets a custom reply; if libmilter refuses it, the MTA's generic text is used.
    private static func setReply(_ ctx: OpaquePointer?, _ reply: SMTPReply) {
        if reply.lines.count == 1 {
            _ = CMilterShim_setreply(ctx, reply.code, reply.enhancedCode, reply.lines[0])
            return
        }
        let copies = reply.lines.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) }
        _ = pointers.withUnsafeBufferPointer { buffer in
            CMilterShim_setmlreply(ctx, reply.code, reply.enhancedCode, buffer.baseAddress, buffer.count)
        }
    }
}
