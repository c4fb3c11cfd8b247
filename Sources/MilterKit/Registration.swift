import Synchronization

/// The one filter this process registers with libmilter, which keeps its
/// filter description in process-wide state; the trampolines read it here.
struct Registration: Sendable {
    let factory: any MilterSessionFactory
    let macros: MacroRequest
    /// `SMFIP_NR_*` flags to ask for (see `MilterSettings.quietStages`).
    let noReplySteps: UInt

    private static let slot = Mutex<Registration?>(nil)

    static var current: Registration? { slot.withLock { $0 } }

    /// Installs the registration; false if one exists (libmilter allows one per process).
    static func install(_ registration: Registration) -> Bool {
        slot.withLock { current in
            guard current == nil else { return false }
            current = registration
            return true
        }
    }
}
