import AffinityProtocol

/// An outcome on its way to a subscriber, remembered until the subscriber acks it.
enum InFlightOutcome: Sendable {
    /// Pushed live by a delivery that is waiting for the ack.
    case live(PendingDelivery)
    /// Read from the store's parked list; an ack removes the parked copy (by key and id).
    case parked(ParkedOutcomeReference)

    /// The process instance key of the outcome.
    var key: ProcessInstanceKey {
        switch self {
        case .live(let delivery): delivery.reference.key
        case .parked(let reference): reference.key
        }
    }
}

/// Identifies a parked outcome without holding its variables.
struct ParkedOutcomeReference: Sendable, Hashable {
    let key: ProcessInstanceKey
    let id: String

    init(_ outcome: Outcome) {
        key = outcome.key
        id = outcome.id
    }

    init(key: ProcessInstanceKey, id: String) {
        self.key = key
        self.id = id
    }
}

/// Something subscribed to keys on this replica that can receive outcomes: a WebSocket
/// connection or a long poll.
protocol OutcomeSubscriber: AnyObject, Sendable {
    /// The connection's id.
    var connectionID: ConnectionID { get }

    /// Offers an outcome for a key this subscriber registered. Returns false when it was not
    /// taken (unsubscribed meanwhile, closing, or over its outbound budget).
    func offer(_ outcome: Outcome, as inFlight: InFlightOutcome) -> Bool

    /// Outcomes are parked for `key` that this subscriber may not have read (after a route refresh found
    /// them): it reads them, unless a read runs or follows anyway.
    func parkedWaiting(for key: ProcessInstanceKey)
}
