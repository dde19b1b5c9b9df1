import AffinityProtocol
import Synchronization

/// A `GET /v1/outcomes/{key}` request waiting for one outcome, as a subscriber of its key.
///
/// While the poll reads the key's parked outcomes it refuses live ones (they park, and it reads them
/// next); while it waits it takes the first outcome offered. It ends early when the replica drains,
/// when its HTTP client goes away (then it takes nothing), or when outcomes are reported parked for
/// its key (it reads them).
final class LongPollWaiter: OutcomeSubscriber {
    enum Event {
        /// An outcome was taken.
        case outcome(Outcome, InFlightOutcome)
        /// Outcomes were parked for the key meanwhile: read them.
        case parkedWaiting
        case timedOut
        case draining
        /// The HTTP client closed its connection.
        case clientGone
    }

    private enum Phase {
        case reading
        case waiting
        case closed
    }

    private struct State {
        var phase = Phase.reading
        var taken: (Outcome, InFlightOutcome)?
        var parkedSince = false
        var draining = false
        var clientGone = false
        var waiter: CheckedContinuation<Void, Never>?

        /// What ends the wait now, if anything.
        var event: Event? {
            if clientGone { return .clientGone }
            if let (outcome, inFlight) = taken { return .outcome(outcome, inFlight) }
            if draining { return .draining }
            if parkedSince { return .parkedWaiting }
            return nil
        }
    }

    let connectionID = ConnectionID.next()
    private let state = Mutex(State())

    func offer(_ outcome: Outcome, as inFlight: InFlightOutcome) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            switch state.phase {
            case .reading:
                state.parkedSince = true
                return (false, nil)
            case .closed:
                return (false, nil)
            case .waiting:
                guard state.taken == nil, !state.clientGone else { return (false, nil) }
                state.taken = (outcome, inFlight)
                defer { state.waiter = nil }
                return (true, state.waiter)
            }
        }
        waiter?.resume()
        return accepted
    }

    func parkedWaiting(for key: ProcessInstanceKey) {
        wake { $0.parkedSince = true }
    }

    /// Ends the wait early because the replica drains.
    func cancelForDrain() {
        wake { $0.draining = true }
    }

    /// The HTTP client closed its connection: take nothing more.
    func clientGone() {
        wake { $0.clientGone = true }
    }

    /// The poll starts a read of the parked outcomes: live outcomes are refused until ``beginWaiting()``.
    func beginReading() {
        state.withLock { state in
            if state.phase != .closed { state.phase = .reading }
            state.parkedSince = false
        }
    }

    /// The poll goes on after an outcome it took could not be handed out: it reads the parked outcomes again,
    /// then waits.
    func reopen() {
        state.withLock { state in
            guard !state.clientGone else { return }
            state.phase = .reading
            state.parkedSince = false
        }
    }

    /// The read found nothing: take live outcomes from now on. Returns false when the poll must read again
    /// instead (something was parked during the read).
    func beginWaiting() -> Bool {
        state.withLock { state in
            guard !state.parkedSince else {
                state.parkedSince = false
                return false
            }
            if state.phase != .closed { state.phase = .waiting }
            return true
        }
    }

    /// Waits until `deadline` for an event; stops taking outcomes when it returns anything but
    /// ``Event/parkedWaiting`` (an outcome taken stays with the waiter until ``close()``).
    func wait(until deadline: ContinuousClock.Instant) async -> Event {
        let ended = await withTaskGroup(of: Void.self) { group -> Event? in
            group.addTask {
                try? await Task.sleep(until: deadline)
                self.wake { _ in }
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.event != nil || ContinuousClock.now >= deadline { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            group.cancelAll()
            return state.withLock { $0.event }
        }
        guard let ended else {
            stopTaking()
            return .timedOut
        }
        if case .parkedWaiting = ended { return ended }
        stopTaking()
        return ended
    }

    private func stopTaking() {
        state.withLock { $0.phase = .closed }
    }

    /// Stops taking outcomes; returns the one taken, if any (the caller hands it out, or reports it lost).
    @discardableResult
    func close() -> InFlightOutcome? {
        state.withLock { state in
            state.phase = .closed
            defer { state.taken = nil }
            return state.taken?.1
        }
    }

    private func wake(_ change: (inout State) -> Void) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            change(&state)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
