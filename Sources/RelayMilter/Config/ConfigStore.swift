import NIOConcurrencyHelpers
import RelayConfig

/// The config in force. Sessions take a snapshot when they start; a reload
/// swaps in a new value and never touches snapshots already taken.
public final class ConfigStore: Sendable {
    private let current: NIOLockedValueBox<RelayMilterConfig>

    public init(_ config: RelayMilterConfig) {
        current = NIOLockedValueBox(config)
    }

    public var snapshot: RelayMilterConfig { current.withLockedValue { $0 } }

    public func replace(with config: RelayMilterConfig) {
        current.withLockedValue { $0 = config }
    }
}
