import Synchronization

/// Wakes the drain when something it waits for may have changed (a delivery finished with none left, a
/// connection ended). Until ``arm()`` a poke costs one atomic load, so the delivery path pays nothing while the
/// replica is not draining.
final class DrainSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let armed = Atomic<Bool>(false)
    private let state = Mutex(State())

    /// From now on pokes wake ``wait(until:)``.
    func arm() {
        armed.store(true, ordering: .releasing)
    }

    /// Something changed: wakes the waiter (or the next wait returns at once).
    func poke() {
        guard armed.load(ordering: .acquiring) else { return }
        wake()
    }

    /// Waits for a poke since the last wait, `deadline` (nil: no deadline), or the task's cancellation.
    func wait(until deadline: ContinuousClock.Instant?) async {
        await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask {
                    guard (try? await Task.sleep(until: deadline)) != nil else { return }
                    self.wake()
                }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { state -> Bool in
                        if state.pending || Task.isCancelled {
                            state.pending = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                self.wake()
            }
            group.cancelAll()
        }
    }

    private func wake() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }?.resume()
    }
}
