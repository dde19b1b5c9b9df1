/// The decisions of one live delivery of an outcome to the local subscribers of its key, without I/O.
///
/// The outcome is pushed to every subscriber; the first `ack` makes it `delivered`. When every
/// subscriber is gone, or the ack timeout passes first, it must be parked. An ack that arrives
/// after that removes the parked copy again, even while the park is still being written.
///
/// A long poll that takes the outcome parks it first (its HTTP client acknowledges it later with a
/// separate request, possibly on another replica): with that parked copy in the store, the timeout
/// or the loss of every subscriber makes the outcome `parked` without parking it again, and an ack
/// through a WebSocket must remove the copy.
struct DeliveryAttempt {
    enum State: Equatable {
        /// Pushed; waiting for an ack from one of `remaining`. `parkedCopy`: a long poll parked it.
        case waiting(remaining: Set<ConnectionID>, parkedCopy: Bool)
        /// A subscriber acknowledged it.
        case delivered
        /// The coordinator is parking it; `acknowledged` records a late ack meanwhile.
        case parking(acknowledged: Bool)
        /// Parked in the store.
        case parked
    }

    /// What the coordinator must do after an event.
    enum Action: Equatable {
        case none
        /// Answer the worker `delivered`.
        case completeDelivered
        /// Park the outcome, then report ``parkCompleted()``.
        case park
        /// Remove the parked copy from the store (`acknowledge`).
        case removeParkedCopy
    }

    private(set) var state: State

    init(subscribers: Set<ConnectionID>) {
        state =
            subscribers.isEmpty
            ? .parking(acknowledged: false) : .waiting(remaining: subscribers, parkedCopy: false)
    }

    /// True while nobody has decided the outcome's fate yet.
    var isWaiting: Bool {
        if case .waiting = state { return true }
        return false
    }

    mutating func acknowledged(by connection: ConnectionID) -> Action {
        switch state {
        case .waiting(_, let parkedCopy):
            state = .delivered
            return parkedCopy ? .removeParkedCopy : .completeDelivered
        case .delivered:
            return .none
        case .parking:
            state = .parking(acknowledged: true)
            return .none
        case .parked:
            return .removeParkedCopy
        }
    }

    /// A long poll parked the outcome before handing it to its HTTP client.
    mutating func parkedCopyMade() {
        guard case .waiting(let remaining, _) = state else { return }
        state = .waiting(remaining: remaining, parkedCopy: true)
    }

    /// The subscriber disconnected, unsubscribed, or could not take the outcome.
    mutating func subscriberLost(_ connection: ConnectionID) -> Action {
        guard case .waiting(var remaining, let parkedCopy) = state else { return .none }
        remaining.remove(connection)
        guard remaining.isEmpty else {
            state = .waiting(remaining: remaining, parkedCopy: parkedCopy)
            return .none
        }
        return giveUpWaiting(parkedCopy: parkedCopy)
    }

    mutating func timedOut() -> Action {
        guard case .waiting(_, let parkedCopy) = state else { return .none }
        return giveUpWaiting(parkedCopy: parkedCopy)
    }

    /// The park finished (successfully or not).
    mutating func parkCompleted() -> Action {
        guard case .parking(let acknowledged) = state else { return .none }
        state = .parked
        return acknowledged ? .removeParkedCopy : .none
    }

    private mutating func giveUpWaiting(parkedCopy: Bool) -> Action {
        if parkedCopy {
            state = .parked
            return .none
        }
        state = .parking(acknowledged: false)
        return .park
    }
}
