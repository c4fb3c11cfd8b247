/// The most frequent keys of a stream in bounded memory: the Space-Saving
/// algorithm (Metwally et al., 2005). At most `capacity` keys are kept; a new
/// key replaces the least counted one and inherits its count as possible
/// overcount. Any key seen more than total/capacity times is always listed,
/// however many distinct keys go by.
///
/// The kept keys sit in a binary min-heap by count, with each key's heap slot
/// in a dictionary, so that an add is O(log capacity): a refusal from a new
/// client evicts one, and scanning all kept keys for the least counted cost
/// a per cent of the milter's user time under milter-load.
public struct TopK<Key: Hashable & Sendable>: Sendable {
    public struct Entry: Sendable, Equatable {
        public let key: Key
        public let count: Int
        /// How much of `count` may belong to keys this one replaced.
        public let overcount: Int
    }

    public let capacity: Int
    /// A min-heap by `count`: `heap[0]` is always a least counted key.
    private var heap: [Entry] = []
    private var slots: [Key: Int] = [:]

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        heap.reserveCapacity(capacity)
        slots.reserveCapacity(capacity)
    }

    public mutating func add(_ key: Key, _ amount: Int = 1) {
        if let slot = slots[key] {
            let entry = heap[slot]
            heap[slot] = Entry(key: key, count: entry.count + amount, overcount: entry.overcount)
            siftDown(from: slot)
        } else if heap.count < capacity {
            heap.append(Entry(key: key, count: amount, overcount: 0))
            slots[key] = heap.count - 1
            siftUp(from: heap.count - 1)
        } else {
            let least = heap[0]
            slots.removeValue(forKey: least.key)
            heap[0] = Entry(key: key, count: least.count + amount, overcount: least.count)
            slots[key] = 0
            siftDown(from: 0)
        }
    }

    public var count: Int { heap.count }

    /// The `n` most counted keys, most first (ties in no particular order).
    public func top(_ n: Int) -> [Entry] {
        Array(heap.sorted { $0.count > $1.count }.prefix(n))
    }

    private mutating func siftUp(from start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].count < heap[parent].count else { return }
            swapSlots(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            var least = parent
            let left = 2 * parent + 1, right = left + 1
            if left < heap.count, heap[left].count < heap[least].count { least = left }
            if right < heap.count, heap[right].count < heap[least].count { least = right }
            guard least != parent else { return }
            swapSlots(parent, least)
            parent = least
        }
    }

    private mutating func swapSlots(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        slots[heap[a].key] = a
        slots[heap[b].key] = b
    }
}
