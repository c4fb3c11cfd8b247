import Synchronization

/// How many MTA connections have a session open right now.
final class OpenSessionCounter: Sendable {
    private let count = Atomic<Int>(0)

    func opened() { count.add(1, ordering: .relaxed) }
    func closed() { count.subtract(1, ordering: .relaxed) }
    var current: Int { count.load(ordering: .relaxed) }
}
