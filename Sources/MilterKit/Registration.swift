import NIOConcurrencyHelpers

/// The one filter this process registers with libmilter, which keeps its
/// filter description in process-wide state; the trampolines read it here.
struct Registration: Sendable {
    let factory: any MilterSessionFactory
    let macros: MacroRequest
    /// `SMFIP_NR_*` flags to ask for (see `MilterSettings.quietStages`).
    let noReplySteps: UInt
    /// `SMFIP_NO*` flags to ask for (see `MilterSettings.skippedStages`).
    let skipSteps: UInt
    /// The `smfi_setsymlist` arguments, joined once rather than at every negotiation.
    let symbolLists: [(stage: CInt, names: String)]
    /// Whether header fields are asked for (`MilterSettings.readsHeaders`).
    let readsHeaders: Bool
    /// Whether the body is asked for (`MilterSettings.readsBody`).
    let readsBody: Bool

    init(factory: any MilterSessionFactory, macros: MacroRequest, noReplySteps: UInt, skipSteps: UInt, readsHeaders: Bool = false,
         readsBody: Bool = false) {
        self.readsHeaders = readsHeaders
        self.readsBody = readsBody
        self.factory = factory
        self.macros = macros
        self.noReplySteps = noReplySteps
        self.skipSteps = skipSteps
        symbolLists = MilterStage.allCases.compactMap { stage in
            let names = macros[stage]
            guard !names.isEmpty, let symlistStage = stage.symlistStage else { return nil }
            return (symlistStage, names.joined(separator: " "))
        }
    }

    private static let slot = NIOLockedValueBox<Registration?>(nil)

    static var current: Registration? { slot.withLockedValue { $0 } }

    /// Installs the registration; false if one exists (libmilter allows one per process).
    static func install(_ registration: Registration) -> Bool {
        slot.withLockedValue { current in
            guard current == nil else { return false }
            current = registration
            return true
        }
    }
}
