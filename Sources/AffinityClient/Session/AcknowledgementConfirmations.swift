import Synchronization

/// Acks waiting for the replica's `acknowledged`: a request returns its outcome only once the replica
/// confirmed that the ack took effect (the parked copy removed, the id remembered), so that whatever the
/// caller does next (the next turn of a chat, through another front-end) cannot receive that outcome again.
///
/// A confirmation that does not come within the wait (the connection dropped, a replica that does not
/// confirm) releases the waiter anyway: the outcome was handed over; it may then reach the key's next
/// subscriber once more, as a duplicate by id.
final class AcknowledgementConfirmations: Sendable {
    private struct State {
        var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
        var expected: Set<String> = []
        var confirmed: Set<String> = []
    }

    private let state = Mutex(State())

    /// Expects a confirmation for `id` (call before sending the ack, so that an early answer is not missed).
    func expect(_ id: String) {
        state.withLock { state in
            state.confirmed.remove(id)
            state.expected.insert(id)
        }
    }

    /// Waits until `id` is confirmed, at most `timeout`; returns whether it was.
    func wait(for id: String, timeout: Duration) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.release(id)
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.confirmed.contains(id) { return true }
                    state.waiters[id, default: []].append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
            group.cancelAll()
            return state.withLock { state in
                state.expected.remove(id)
                return state.confirmed.remove(id) != nil
            }
        }
    }

    /// The replica confirmed `id`.
    func confirm(_ id: String) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.expected.contains(id) else { return [] }
            state.confirmed.insert(id)
            return state.waiters.removeValue(forKey: id) ?? []
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The connection ended: no confirmation will come for the acks in flight.
    func releaseAll() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state.waiters.removeAll() }
            return state.waiters.values.flatMap { $0 }
        }
        for waiter in waiters { waiter.resume() }
    }

    private func release(_ id: String) {
        let waiters = state.withLock { $0.waiters.removeValue(forKey: id) ?? [] }
        for waiter in waiters { waiter.resume() }
    }
}
