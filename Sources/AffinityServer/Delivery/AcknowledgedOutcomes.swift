import AffinityProtocol
import Synchronization

/// The outcomes acknowledged on this replica lately (by key and id, the latest `capacity` of them): an
/// outcome that comes again (a worker's retry, a Zeebe job delivered twice) is answered `delivered` and
/// never pushed to the key's next subscriber, who could not tell it is stale. The stores remember
/// acknowledgements too (for the park TTL); this covers the live path, which does not ask the store.
final class AcknowledgedOutcomes: Sendable {
    private struct State {
        var members: Set<ParkedOutcomeReference> = []
        var order: [ParkedOutcomeReference] = []
        var head = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func insert(_ reference: ParkedOutcomeReference) {
        state.withLock { state in
            guard state.members.insert(reference).inserted else { return }
            if state.order.count < capacity {
                state.order.append(reference)
                return
            }
            state.members.remove(state.order[state.head])
            state.order[state.head] = reference
            state.head = (state.head + 1) % capacity
        }
    }

    func contains(_ reference: ParkedOutcomeReference) -> Bool {
        state.withLock { $0.members.contains(reference) }
    }
}
