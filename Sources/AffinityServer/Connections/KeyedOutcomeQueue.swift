import AffinityProtocol
import Synchronization

/// Keeps outcomes from one worker connection in order per key: the first outcome for a key starts
/// a chain that delivers it and then every outcome queued behind it for the same key; different
/// keys proceed in parallel.
///
/// Back-pressure: at most an ``InFlightWindow`` of outcomes (count and bytes) may be queued or in
/// delivery at once. ``enqueue(_:)`` waits for room, and since the connection's session waits with
/// it, its inbox fills and reading from the socket pauses: a worker that sends faster than its
/// outcomes are answered is slowed down to that pace, its excess waiting in its own TCP buffers.
final class KeyedOutcomeQueue: Sendable {
    enum EnqueueResult: Equatable {
        /// The caller must start a chain for the outcome's key.
        case startChain
        /// Queued behind an earlier outcome for the same key.
        case queued
        /// The task was cancelled while the outcome waited for room; it was not queued.
        case cancelled
    }

    private struct State {
        var chains: [ProcessInstanceKey: [Outcome]] = [:]
        var window: InFlightWindow
        /// The session waiting for room (one producer only).
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    init(maxCount: Int, maxBytes: Int) {
        state = Mutex(State(window: InFlightWindow(maxCount: maxCount, maxBytes: maxBytes)))
    }

    /// The outcomes queued or in delivery now, and their bytes.
    var inFlight: (count: Int, bytes: Int) {
        state.withLock { ($0.window.count, $0.window.bytes) }
    }

    /// Queues `outcome` now when the window has room for it (`startChain` or `queued`); nil, queueing
    /// nothing, when it has none (``enqueue(_:)`` waits for room). One caller at a time (the session).
    func tryEnqueue(_ outcome: Outcome) -> EnqueueResult? {
        let size = outcome.frameByteCount
        return state.withLock { state -> EnqueueResult? in
            guard state.window.admit(size) else { return nil }
            if state.chains[outcome.key] != nil {
                state.chains[outcome.key]!.append(outcome)
                return .queued
            }
            state.chains[outcome.key] = []
            return .startChain
        }
    }

    /// Queues `outcome`, once the window has room for it. One caller at a time (the session).
    func enqueue(_ outcome: Outcome) async -> EnqueueResult {
        let size = outcome.frameByteCount
        while true {
            if let result = tryEnqueue(outcome) {
                return result
            }
            if Task.isCancelled { return .cancelled }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        guard !state.window.fits(size), !Task.isCancelled else { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                state.withLock { state in
                    defer { state.waiter = nil }
                    return state.waiter
                }?.resume()
            }
        }
    }

    /// Called when a chain answered `answered`: frees its room, and returns the next queued outcome
    /// of its key, or nil (and the chain ends).
    func next(after answered: Outcome) -> Outcome? {
        let key = answered.key
        let (next, waiter) = state.withLock { state -> (Outcome?, CheckedContinuation<Void, Never>?) in
            state.window.release(answered.frameByteCount)
            let waiter = state.waiter
            state.waiter = nil
            guard var queued = state.chains[key], !queued.isEmpty else {
                state.chains[key] = nil
                return (nil, waiter)
            }
            let next = queued.removeFirst()
            state.chains[key] = queued
            return (next, waiter)
        }
        waiter?.resume()
        return next
    }
}
