import AffinityProtocol
import Synchronization

/// Keeps outcomes from one worker connection in order per key: the first outcome for a key starts
/// a chain that delivers it and then every outcome queued behind it for the same key; different
/// keys proceed in parallel.
final class KeyedOutcomeQueue: Sendable {
    private let chains = Mutex<[ProcessInstanceKey: [Outcome]]>([:])

    /// Queues `outcome`; returns true when the caller must start a chain for its key.
    func enqueue(_ outcome: Outcome) -> Bool {
        chains.withLock { chains in
            if chains[outcome.key] != nil {
                chains[outcome.key]!.append(outcome)
                return false
            }
            chains[outcome.key] = []
            return true
        }
    }

    /// The next queued outcome of the chain for `key`, or nil (and the chain ends).
    func next(for key: ProcessInstanceKey) -> Outcome? {
        chains.withLock { chains in
            guard var queued = chains[key], !queued.isEmpty else {
                chains[key] = nil
                return nil
            }
            let next = queued.removeFirst()
            chains[key] = queued
            return next
        }
    }
}
