import Synchronization

/// A queue of values for exactly one consumer, which waits for the next value with an optional
/// timeout and task cancellation, without leaving a continuation behind in any case.
final class Mailbox<Value: Sendable>: Sendable {
    enum Wake: Sendable {
        case value(Value)
        case failed(AffinityClientError)
        case timedOut
        case cancelled
    }

    private struct State {
        var queue: [Value] = []
        var head = 0
        var failure: AffinityClientError?
        var waiter: CheckedContinuation<Wake, Never>?
        var generation = 0
        var interrupted: (generation: Int, wake: Wake)?
    }

    private let state = Mutex(State())

    /// Values queued and not taken yet.
    var bufferedCount: Int { state.withLock { $0.queue.count - $0.head } }
    /// True while a consumer waits.
    var isWaiting: Bool { state.withLock { $0.waiter != nil } }

    /// Queues a value or hands it to the waiting consumer.
    func push(_ value: Value) {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            guard state.failure == nil else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.queue.append(value)
            return nil
        }
        waiter?.resume(returning: .value(value))
    }

    /// Ends the mailbox: the consumer gets `error` once the queued values are taken.
    func fail(_ error: AffinityClientError) {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            if state.failure == nil { state.failure = error }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: .failed(error))
    }

    /// The next value; `.timedOut` after `timeout`, `.cancelled` when the task is cancelled.
    func next(timeout: Duration?) async -> Wake {
        let generation = state.withLock { state -> Int in
            state.generation += 1
            return state.generation
        }
        return await withTaskGroup(of: Void.self) { group in
            if let timeout {
                group.addTask {
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    self.interrupt(generation: generation, with: .timedOut)
                }
            }
            let wake = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                    let immediate = state.withLock { state -> Wake? in
                        if state.head < state.queue.count {
                            let value = state.queue[state.head]
                            state.head += 1
                            if state.head == state.queue.count {
                                state.queue.removeAll(keepingCapacity: false)
                                state.head = 0
                            }
                            return .value(value)
                        }
                        if let failure = state.failure { return .failed(failure) }
                        if let interrupted = state.interrupted, interrupted.generation == generation {
                            state.interrupted = nil
                            return interrupted.wake
                        }
                        state.waiter = continuation
                        return nil
                    }
                    if let immediate { continuation.resume(returning: immediate) }
                }
            } onCancel: {
                self.interrupt(generation: generation, with: .cancelled)
            }
            group.cancelAll()
            return wake
        }
    }

    private func interrupt(generation: Int, with wake: Wake) {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            guard state.generation == generation else { return nil }
            guard let waiter = state.waiter else {
                state.interrupted = (generation, wake)
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: wake)
    }
}
