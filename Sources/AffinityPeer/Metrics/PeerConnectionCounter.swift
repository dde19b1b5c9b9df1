import Synchronization

/// A thread-safe count of connections, shared with NIO channel callbacks.
final class PeerConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// Adds one.
    func increment() {
        self.count.add(1, ordering: .relaxed)
    }

    /// The current count.
    var value: Int {
        self.count.load(ordering: .relaxed)
    }
}
