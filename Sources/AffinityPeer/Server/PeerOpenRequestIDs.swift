import Synchronization

/// The request ids open on one `DeliverStream` (received, not answered yet): a caller must not reuse one
/// before its answer, or two answers would carry the same id.
final class PeerOpenRequestIDs: Sendable {
    private let ids = Mutex(Set<UInt64>())

    /// Opens `id`; `false` when it is open already.
    func open(_ id: UInt64) -> Bool {
        self.ids.withLock { $0.insert(id).inserted }
    }

    /// Closes `id` (its answer is on the way).
    func close(_ id: UInt64) {
        _ = self.ids.withLock { $0.remove(id) }
    }
}
