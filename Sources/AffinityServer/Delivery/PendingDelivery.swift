import AffinityProtocol
import Synchronization

/// One live delivery waiting for an ack: the ``DeliveryAttempt`` state machine plus the
/// continuation of the delivery that waits for its decision, or the callback of one that does not
/// wait in a task (``whenDecided(timeouts:_:)``).
final class PendingDelivery: Sendable {
    /// A delivery that waits without a task: its ack timeout and what to call with the decision.
    private struct Observer {
        let timeouts: AckTimeouts
        let slot: AckTimeouts.Slot
        let decided: @Sendable (_ delivered: Bool) -> Void
    }

    private struct State {
        var attempt: DeliveryAttempt
        var waiter: CheckedContinuation<Void, Never>?
        var observer: Observer?
        var decided = false
        /// The delivery finished its work on the store (parked, removed the copy again, or needed nothing).
        var settled = false
        var settleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Key and id of the outcome (the variables are not kept: an unacked entry may live long).
    let reference: ParkedOutcomeReference
    private let state: Mutex<State>
    /// A long poll took it (see ``DeliveryCoordinator/handOverToPoll(_:delivery:poll:)``): its coordinator looks
    /// for it among the deliveries waiting for an HTTP ack only then.
    let handedToPoll = Atomic<Bool>(false)

    init(outcome: Outcome, subscribers: Set<ConnectionID>) {
        self.reference = ParkedOutcomeReference(outcome)
        self.state = Mutex(State(attempt: DeliveryAttempt(subscribers: subscribers)))
    }

    var attemptState: DeliveryAttempt.State {
        state.withLock { $0.attempt.state }
    }

    /// A subscriber acked; returns `.removeParkedCopy` when the caller must remove the parked copy.
    func acknowledged(by connection: ConnectionID) -> DeliveryAttempt.Action {
        apply { $0.acknowledged(by: connection) }
    }

    /// A long poll parked the outcome before handing it over (see ``DeliveryAttempt/parkedCopyMade()``);
    /// returns the state after it.
    func parkedCopyMade() -> DeliveryAttempt.State {
        _ = apply { attempt in
            attempt.parkedCopyMade()
            return .none
        }
        return attemptState
    }

    func subscriberLost(_ connection: ConnectionID) {
        _ = apply { $0.subscriberLost(connection) }
    }

    func parkCompleted() -> DeliveryAttempt.Action {
        apply { $0.parkCompleted() }
    }

    /// Waits until the outcome was acked (returns true) or must be parked (false): every subscriber gone,
    /// the ack timeout of `timeouts` passed, or the waiting task was cancelled.
    ///
    /// The timeout is an event-loop timer shared with the deliveries whose deadlines are close (see
    /// ``AckTimeouts``), left as soon as the decision is in: a `Task.sleep` would keep a timer alive for the
    /// whole ack timeout after every delivery, and a timer of its own per delivery costs more than the rest
    /// of the wait.
    func waitForDecision(timeouts: AckTimeouts) async -> Bool {
        let slot = timeouts.start(self)
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.decided { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.timedOut()
        }
        timeouts.stop(slot)
        if case .delivered = attemptState { return true }
        return false
    }

    /// Like ``waitForDecision(timeouts:)``, without a task that waits: returns the decision (true: acked) when it
    /// is in already; otherwise returns nil and calls `decided` once it is, on the thread that decides it (the
    /// ack's event loop, the ack timeout's, or the one where the last subscriber was lost).
    func whenDecided(timeouts: AckTimeouts, _ decided: @escaping @Sendable (_ delivered: Bool) -> Void) -> Bool? {
        let slot = timeouts.start(self)
        let decidedAlready = state.withLock { state -> Bool in
            if state.decided { return true }
            state.observer = Observer(timeouts: timeouts, slot: slot, decided: decided)
            return false
        }
        guard decidedAlready else { return nil }
        timeouts.stop(slot)
        if case .delivered = attemptState { return true }
        return false
    }

    /// The ack timeout passed (or the waiting task was cancelled).
    func timedOut() {
        _ = apply { $0.timedOut() }
    }

    /// The delivery is done with the store: whatever an ack asked to remove is removed.
    func markSettled() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.settled = true
            defer { state.settleWaiters = [] }
            return state.settleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until ``markSettled()`` (for a confirmed ack that came while the outcome was being parked: the
    /// confirmation must follow the removal of the parked copy).
    func waitUntilSettled() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.settled { return true }
                state.settleWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func apply(_ event: (inout DeliveryAttempt) -> DeliveryAttempt.Action) -> DeliveryAttempt.Action {
        let (action, waiter, observer, delivered) = state.withLock {
            state -> (DeliveryAttempt.Action, CheckedContinuation<Void, Never>?, Observer?, Bool) in
            let action = event(&state.attempt)
            guard !state.decided, !state.attempt.isWaiting else { return (action, nil, nil, false) }
            state.decided = true
            defer {
                state.waiter = nil
                state.observer = nil
            }
            return (action, state.waiter, state.observer, state.attempt.state == .delivered)
        }
        waiter?.resume()
        if let observer {
            observer.timeouts.stop(observer.slot)
            observer.decided(delivered)
        }
        return action
    }
}
