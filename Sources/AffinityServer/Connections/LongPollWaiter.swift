import AffinityProtocol
import Synchronization

/// A `GET /v1/outcomes/{key}` request waiting for one outcome: a subscriber that takes the first
/// outcome offered and refuses any more.
final class LongPollWaiter: OutcomeSubscriber {
    enum Result {
        case outcome(Outcome, InFlightOutcome)
        case timedOut
        case draining
    }

    private struct State {
        var taken: (Outcome, InFlightOutcome)?
        var draining = false
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    let connectionID = ConnectionID.next()
    private let state = Mutex(State())

    func offer(_ outcome: Outcome, as inFlight: InFlightOutcome) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.closed, state.taken == nil else { return (false, nil) }
            state.taken = (outcome, inFlight)
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume()
        return accepted
    }

    /// Ends the wait early because the replica drains.
    func cancelForDrain() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.draining = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Waits up to `timeout` for an outcome, then stops accepting any.
    func wait(timeout: Duration) async -> Result {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.taken != nil || state.draining { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            group.cancelAll()
        }
        return close()
    }

    /// Stops accepting outcomes and returns what was taken, if anything.
    func close() -> Result {
        state.withLock { state in
            state.closed = true
            if let (outcome, inFlight) = state.taken { return .outcome(outcome, inFlight) }
            return state.draining ? .draining : .timedOut
        }
    }
}
