import CMilter
import CMilterShim

/// What libmilter keeps for one MTA connection in `smfi_setpriv`.
///
/// Lifetime: created and retained once (`Unmanaged.passRetained`) by the first
/// callback of a connection that needs it, and released exactly once in the
/// close callback (`takeRetainedValue`), after `smfi_setpriv(ctx, NULL)`.
/// libmilter always calls close, even when negotiation failed, and close may
/// come with no context set at all.
///
/// `@unchecked Sendable`: libmilter hands a connection from worker thread to
/// worker thread, but runs its callbacks one at a time (each waits for the
/// MTA's next command, and libmilter's session queue hand-off orders them), so
/// the mutable `messageOpen` is never touched by two threads at once.
final class ConnectionContext: @unchecked Sendable {
    let session: any MilterSession
    let macros: MacroRequest
    var messageOpen = false
    /// The `SMFIP_NR_*` flags the MTA agreed to: libmilter must be told
    /// `SMFIS_NOREPLY` at those stages, whatever the session answered.
    var noReplySteps: UInt = 0
    /// Whether the MTA took our macro lists at negotiation (`smfi_setsymlist`);
    /// without them it sends only the macros its own settings name.
    var macroListTaken = false

    init(session: any MilterSession, macros: MacroRequest) {
        self.session = session
        self.macros = macros
    }

    /// The context for `ctx`, made and attached on first use.
    static func attached(to ctx: OpaquePointer?, registration: Registration) -> ConnectionContext {
        if let raw = smfi_getpriv(ctx) {
            return Unmanaged<ConnectionContext>.fromOpaque(raw).takeUnretainedValue()
        }
        let context = ConnectionContext(session: registration.factory.makeSession(), macros: registration.macros)
        // Balanced by `detach(from:)` in the close callback.
        _ = smfi_setpriv(ctx, Unmanaged.passRetained(context).toOpaque())
        return context
    }

    /// The context for `ctx` if one was attached.
    static func existing(for ctx: OpaquePointer?) -> ConnectionContext? {
        guard let raw = smfi_getpriv(ctx) else { return nil }
        return Unmanaged<ConnectionContext>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Detaches and releases the context: the one release of `attached(to:)`'s retain.
    static func detach(from ctx: OpaquePointer?) -> ConnectionContext? {
        guard let raw = smfi_getpriv(ctx) else { return nil }
        _ = smfi_setpriv(ctx, nil)
        return Unmanaged<ConnectionContext>.fromOpaque(raw).takeRetainedValue()
    }

    /// Copies the requested macros for `stage` out of libmilter.
    func readMacros(_ ctx: OpaquePointer?, _ stage: MilterStage) -> Macros {
        let names = macros[stage]
        var values = Macros(capacity: names.count)
        for name in names {
            if let value = CMilterShim_getsymval(ctx, name) {
                values.set(name, String(cString: value))
            }
        }
        return values
    }
}
