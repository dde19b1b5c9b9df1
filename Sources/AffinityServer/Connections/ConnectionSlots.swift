import Synchronization

/// The WebSocket connections a replica admits: at most `limit` at once (`--max-connections`).
///
/// A slot is taken when an upgrade is accepted, before the `101` is written, and given back when
/// that connection's channel closes; an upgrade that finds every slot taken is refused with 503
/// `unavailable`, while the connections that hold a slot go on being served.
final class ConnectionSlots: Sendable {
    /// The most connections admitted at once.
    let limit: Int
    private let taken = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a slot; false when all `limit` are taken.
    func take() -> Bool {
        var current = taken.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = taken.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives back a slot taken with ``take()``.
    func release() {
        taken.subtract(1, ordering: .acquiringAndReleasing)
    }

    /// The slots taken now.
    var count: Int {
        taken.load(ordering: .relaxed)
    }
}
