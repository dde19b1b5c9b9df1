/// The decisions of one live delivery of an outcome to the local subscribers of its key, without I/O.
///
/// The outcome is pushed to every subscriber; the first `ack` makes it `delivered`. When every
/// subscriber is gone, or the ack timeout passes first, it must be parked. An ack that arrives
/// after that removes the parked copy again, even while the park is still being written.
struct DeliveryAttempt {
    enum State: Equatable {
        /// Pushed; waiting for an ack from one of `remaining`.
        case waiting(remaining: Set<ConnectionID>)
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
        state = subscribers.isEmpty ? .parking(acknowledged: false) : .waiting(remaining: subscribers)
    }

    /// True while nobody has decided the outcome's fate yet.
    var isWaiting: Bool {
        if case .waiting = state { return true }
        return false
    }

    mutating func acknowledged(by connection: ConnectionID) -> Action {
        switch state {
        case .waiting:
            state = .delivered
            return .completeDelivered
        case .delivered:
            return .none
        case .parking:
            state = .parking(acknowledged: true)
            return .none
        case .parked:
            return .removeParkedCopy
        }
    }

    /// The subscriber disconnected, unsubscribed, or could not take the outcome.
    mutating func subscriberLost(_ connection: ConnectionID) -> Action {
        guard case .waiting(var remaining) = state else { return .none }
        remaining.remove(connection)
        if remaining.isEmpty {
            state = .parking(acknowledged: false)
            return .park
        }
        state = .waiting(remaining: remaining)
        return .none
    }

    mutating func timedOut() -> Action {
        guard case .waiting = state else { return .none }
        state = .parking(acknowledged: false)
        return .park
    }

    /// The park finished (successfully or not).
    mutating func parkCompleted() -> Action {
        guard case .parking(let acknowledged) = state else { return .none }
        state = .parked
        return acknowledged ? .removeParkedCopy : .none
    }
}
