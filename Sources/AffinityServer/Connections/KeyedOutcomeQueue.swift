import AffinityProtocol
import Synchronization

/// Keeps outcomes from one worker connection in order per key: the first outcome for a key starts
/// a chain that delivers it and then every outcome queued behind it for the same key; different
/// keys proceed in parallel. At most `limit` outcomes may be queued or in delivery at once, so a
/// worker cannot make the server hold unbounded data.
final class KeyedOutcomeQueue: Sendable {
    enum EnqueueResult: Equatable {
        /// The caller must start a chain for the outcome's key.
        case startChain
        /// Queued behind an earlier outcome for the same key.
        case queued
        /// `limit` outcomes are already in progress on this connection.
        case full
    }

    private struct State {
        var chains: [ProcessInstanceKey: [Outcome]] = [:]
        var inProgress = 0
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func enqueue(_ outcome: Outcome) -> EnqueueResult {
        state.withLock { state in
            guard state.inProgress < limit else { return .full }
            state.inProgress += 1
            if state.chains[outcome.key] != nil {
                state.chains[outcome.key]!.append(outcome)
                return .queued
            }
            state.chains[outcome.key] = []
            return .startChain
        }
    }

    /// Called when the chain of `key` finished one outcome: returns the next queued outcome of
    /// that key, or nil (and the chain ends).
    func next(for key: ProcessInstanceKey) -> Outcome? {
        state.withLock { state in
            state.inProgress -= 1
            guard var queued = state.chains[key], !queued.isEmpty else {
                state.chains[key] = nil
                return nil
            }
            let next = queued.removeFirst()
            state.chains[key] = queued
            return next
        }
    }
}
