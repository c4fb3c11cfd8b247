import Synchronization

/// The config in force. Sessions take a snapshot when they start; a reload
/// swaps in a new value and never touches snapshots already taken.
public final class ConfigStore: Sendable {
    private let current: Mutex<RelayMilterConfig>

    public init(_ config: RelayMilterConfig) {
        current = Mutex(config)
    }

    public var snapshot: RelayMilterConfig { current.withLock { $0 } }

    public func replace(with config: RelayMilterConfig) {
        current.withLock { $0 = config }
    }
}
