/// The most frequent keys of a stream in bounded memory: the Space-Saving
/// algorithm (Metwally et al., 2005). At most `capacity` keys are kept; a new
/// key replaces the least counted one and inherits its count as possible
/// overcount. Any key seen more than total/capacity times is always listed,
/// however many distinct keys go by.
public struct TopK<Key: Hashable & Sendable>: Sendable {
    public struct Entry: Sendable, Equatable {
        public let key: Key
        public let count: Int
        /// How much of `count` may belong to keys this one replaced.
        public let overcount: Int
    }

    public let capacity: Int
    private var counts: [Key: (count: Int, overcount: Int)] = [:]

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        counts.reserveCapacity(capacity)
    }

    public mutating func add(_ key: Key, _ amount: Int = 1) {
        if let current = counts[key] {
            counts[key] = (current.count + amount, current.overcount)
        } else if counts.count < capacity {
            counts[key] = (amount, 0)
        } else {
            // O(capacity) eviction; capacities here are small (100).
            let (victim, least) = counts.min { $0.value.count < $1.value.count }!
            counts.removeValue(forKey: victim)
            counts[key] = (least.count + amount, least.count)
        }
    }

    public var count: Int { counts.count }

    /// The `n` most counted keys, most first (ties in no particular order).
    public func top(_ n: Int) -> [Entry] {
        counts.sorted { $0.value.count > $1.value.count }.prefix(n).map {
            Entry(key: $0.key, count: $0.value.count, overcount: $0.value.overcount)
        }
    }
}
