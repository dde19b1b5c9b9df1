import AffinityProtocol
import Synchronization

/// Outcome ids acknowledged lately, by process instance key: the latest `capacity` ids, at most `idsPerKey` of
/// one key. An outcome that comes again (a worker's retry, a Zeebe job handed out twice) is answered `delivered`
/// and never handed out again: its key's next subscriber could not tell it is stale.
///
/// The replica keeps one (``DeliveryCoordinator``): it covers the live path, which does not ask the store, and
/// gives a shared store the ids of a key when its last local subscriber leaves. The embedded store keeps one
/// for the acknowledgements it is told about (parked copies, HTTP acks). Keyed by the process instance key, so
/// an insert or a lookup hashes one integer and a key's ids sit in one small array; bounded by the number of
/// ids, so its memory is bounded whatever clients acknowledge.
final class AcknowledgedOutcomes: Sendable {
    private struct State {
        var ids: [ProcessInstanceKey: [String]] = [:]
        /// The key of every id inserted, oldest first from `head` (a ring once it holds `capacity`): when the ring
        /// is full, the oldest id of the oldest slot's key is forgotten.
        var order: [ProcessInstanceKey] = []
        var head = 0
    }

    private let state = Mutex(State())
    /// How many ids are remembered at most.
    let capacity: Int
    /// How many ids are remembered per key (a key's outcomes are few: one per request of its process instance).
    let idsPerKey: Int

    init(capacity: Int, idsPerKey: Int = 16) {
        self.capacity = max(1, capacity)
        self.idsPerKey = max(1, idsPerKey)
    }

    func insert(key: ProcessInstanceKey, id: String) {
        state.withLock { state in
            if let index = state.ids.index(forKey: key) {
                // in place: the array is not copied
                guard !state.ids.values[index].contains(id) else { return }
                if state.ids.values[index].count == idsPerKey { state.ids.values[index].removeFirst() }
                state.ids.values[index].append(id)
            } else {
                state.ids[key] = [id]
            }
            if state.order.count < capacity {
                state.order.append(key)
                return
            }
            let oldest = state.order[state.head]
            state.order[state.head] = key
            state.head = (state.head + 1) % capacity
            if let index = state.ids.index(forKey: oldest) {
                state.ids.values[index].removeFirst()
                if state.ids.values[index].isEmpty { state.ids.remove(at: index) }
            }
        }
    }

    func insert(_ reference: ParkedOutcomeReference) {
        insert(key: reference.key, id: reference.id)
    }

    func contains(key: ProcessInstanceKey, id: String) -> Bool {
        state.withLock { $0.ids[key]?.contains(id) ?? false }
    }

    func contains(_ reference: ParkedOutcomeReference) -> Bool {
        contains(key: reference.key, id: reference.id)
    }

    /// The ids remembered for `key`, oldest first.
    func ids(of key: ProcessInstanceKey) -> [String] {
        state.withLock { $0.ids[key] ?? [] }
    }
}
