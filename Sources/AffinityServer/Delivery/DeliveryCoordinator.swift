import AffinityProtocol
import CoreMetrics
import Logging
import Synchronization

/// Delivers outcomes on this replica: local subscribers first (push, wait for the first ack),
/// else the store (park, or forward to the replica that holds the route in cluster mode).
/// Also handles acks and the clean-up when a subscriber goes away.
///
/// In a cluster it also serves the peer channel: `AffinityCluster` makes it the `PeerDeliveryHandler`, so an
/// outcome another replica forwarded here goes from the peer service straight to
/// ``deliverForwarded(_:)``.
package final class DeliveryCoordinator: Sendable {
    private let store: any OutcomeStore
    private let forwarder: (any OutcomeForwarder)?
    private let registry: ConnectionRegistry
    private let replicaID: String
    /// The ack timeouts of the live deliveries, one timer per few milliseconds of deadlines.
    let ackTimeouts: AckTimeouts
    let metrics: AffinityMetrics
    private let logger: Logger
    /// Sends every outcome workers deliver here to the legacy protocol's clients (with `--legacy-protocol`).
    let legacy: LegacyBroadcaster?
    let activeDeliveries = Atomic<Int>(0)
    /// Poked when the last delivery in progress ends (the drain waits for that).
    private let drainSignal: DrainSignal
    private let acknowledgedOutcomes = AcknowledgedOutcomes(capacity: 32_768)
    /// Live outcomes a long poll took and parked, waiting for their HTTP client's ack (see ``handOverToPoll``).
    private let awaitingHTTPAck = Mutex<[ParkedOutcomeReference: (delivery: PendingDelivery, poll: ConnectionID)]>([:])

    init(
        store: any OutcomeStore, forwarder: (any OutcomeForwarder)?, registry: ConnectionRegistry,
        replicaID: String, ackTimeouts: AckTimeouts, metrics: AffinityMetrics, logger: Logger,
        legacy: LegacyBroadcaster? = nil, drainSignal: DrainSignal = DrainSignal()
    ) {
        self.drainSignal = drainSignal
        self.legacy = legacy
        self.store = store
        self.forwarder = forwarder
        self.registry = registry
        self.replicaID = replicaID
        self.ackTimeouts = ackTimeouts
        self.metrics = metrics
        self.logger = logger
    }

    /// How many replicas one outcome is forwarded to at most while its route keeps moving.
    static let maximumForwards = 3

    /// Deliveries running now (the drain waits for them).
    var deliveriesInProgress: Int { activeDeliveries.load(ordering: .relaxed) }

    /// Delivers one outcome received from a worker and returns how it was answered. With
    /// `--legacy-protocol` it also goes to every legacy client of the cluster (unless it came from a
    /// legacy worker, whose session sent it there already).
    func deliver(
        _ outcome: Outcome, broadcastToLegacyClients: Bool = true
    ) async throws(AffinityError)
        -> DeliveryStatus
    {
        activeDeliveries.add(1, ordering: .relaxed)
        defer { deliveryEnded() }
        if broadcastToLegacyClients, let legacy { await legacy.broadcast(outcome) }
        metrics.outcomesReceived.increment()
        let started = ContinuousClock.now
        do {
            let status = try await route(outcome)
            recordAnswer(status, of: outcome, started: started)
            return status
        } catch {
            throw failed(outcome, error)
        }
    }

    // MARK: - Answers

    func recordAnswer(_ status: DeliveryStatus, of outcome: Outcome, started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        metrics.deliveryDuration.recordNanoseconds(
            elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        switch status {
        case .delivered: metrics.outcomesDelivered.increment()
        case .parked: metrics.outcomesParked.increment()
        }
        logger.trace(
            "outcome answered", metadata: Self.metadata(of: outcome, ["affinity.status": "\(status.rawValue)"]))
    }

    func failed(_ outcome: Outcome, _ error: AffinityError) -> AffinityError {
        metrics.rejected(error.code)
        logger.debug(
            "outcome failed",
            metadata: Self.metadata(
                of: outcome, ["error.code": "\(error.code)", "error.message": "\(error.message)"]))
        return error.withRef(outcome.id)
    }

    func deliveryEnded() {
        if activeDeliveries.subtract(1, ordering: .relaxed).newValue == 0 { drainSignal.poke() }
    }

    /// Whether the store can be reached now (readiness).
    var isStoreReachable: Bool { store.isReachable }

    /// Delivers an outcome another replica forwarded here because the route of its key points at this
    /// replica: to the local subscribers (waiting for an ack), else parks it only if the route still points
    /// here, else reports the replica that owns the key now. Never forwards it again.
    package func deliverForwarded(_ outcome: Outcome) async throws(AffinityError) -> ForwardedDeliveryStatus {
        activeDeliveries.add(1, ordering: .relaxed)
        defer { deliveryEnded() }
        let result = try await deliverLocallyFirst(outcome) { excluded throws(AffinityError) in
            switch try await store.park(outcome: outcome, ifRoutedTo: replicaID) {
            case .parked:
                offerParkedCopy(of: outcome, except: excluded)
                return .parked
            case .alreadyAcknowledged:
                return .delivered
            case .routed(let route):
                return .notOwner(owner: route.replicaID)
            }
        }
        logger.trace(
            "forwarded outcome answered", metadata: Self.metadata(of: outcome, ["affinity.result": "\(result)"]))
        return result
    }

    /// Sends an outcome another replica broadcast to this replica's legacy-protocol clients only (with
    /// `--legacy-protocol`; without it there are none).
    package func sendToLegacyClients(_ outcome: Outcome) {
        legacy?.sendToLocalClients(outcome)
    }

    private func route(_ outcome: Outcome) async throws(AffinityError) -> DeliveryStatus {
        let result = try await deliverLocallyFirst(outcome) { excluded throws(AffinityError) in
            try await parkOrForwardLocally(outcome, notifyLocalExcept: excluded)
        }
        return try Self.status(of: result, for: outcome)
    }

    /// The fallback of a delivery from a worker of this replica: park, or forward to the route's replica.
    func parkOrForwardLocally(
        _ outcome: Outcome, notifyLocalExcept excluded: Set<ConnectionID>
    ) async throws(AffinityError) -> ForwardedDeliveryStatus {
        switch try await parkOrForward(outcome, notifyLocalExcept: excluded) {
        case .delivered: .delivered
        case .parked: .parked
        }
    }

    static func status(
        of result: ForwardedDeliveryStatus, for outcome: Outcome
    ) throws(AffinityError) -> DeliveryStatus {
        switch result {
        case .delivered: return .delivered
        case .parked: return .parked
        case .notOwner(let owner):
            throw AffinityError(
                code: .unavailable, message: "the route of key \(outcome.key) moved to \(owner ?? "no replica")")
        }
    }

    /// Pushes the outcome to the local subscribers and waits for the first ack; when there are none, or
    /// none acks in time, runs `fallback` (park or forward), given the subscribers that took it live.
    private func deliverLocallyFirst(
        _ outcome: Outcome,
        fallback: (Set<ConnectionID>) async throws(AffinityError) -> ForwardedDeliveryStatus
    ) async throws(AffinityError) -> ForwardedDeliveryStatus {
        switch pushToLocalSubscribers(outcome) {
        case .acknowledgedAlready:
            return .delivered
        case .noSubscribers:
            return try await fallback([])
        case .pushed(let delivery, let took):
            let delivered = await delivery.waitForDecision(timeouts: ackTimeouts)
            forgetPollHandOver(of: delivery)
            return try await afterLocalWait(delivery, delivered: delivered, took: took, of: outcome, fallback: fallback)
        }
    }

    enum LocalPush {
        /// Acknowledged on this replica before: answered `delivered`, not handed out again.
        case acknowledgedAlready
        case noSubscribers
        /// Offered to every local subscriber; `took` are those that queued it.
        case pushed(PendingDelivery, took: Set<ConnectionID>)
    }

    /// Offers the outcome to the local subscribers of its key, as one ``PendingDelivery`` waiting for the first ack.
    func pushToLocalSubscribers(_ outcome: Outcome) -> LocalPush {
        let reference = ParkedOutcomeReference(outcome)
        if acknowledgedOutcomes.contains(reference) {
            logger.debug(
                "outcome acknowledged already on this replica; not handed out again",
                metadata: Self.metadata(of: outcome))
            return .acknowledgedAlready
        }
        let subscribers = registry.subscribers(of: outcome.key)
        guard !subscribers.isEmpty else { return .noSubscribers }
        let ids = Set(subscribers.lazy.map(\.connectionID))
        let delivery = PendingDelivery(outcome: outcome, subscribers: ids)
        var took = ids
        for subscriber in subscribers where !subscriber.offer(outcome, as: .live(delivery)) {
            took.remove(subscriber.connectionID)
            delivery.subscriberLost(subscriber.connectionID)
        }
        return .pushed(delivery, took: took)
    }

    /// A long poll that took the decided `delivery` no longer waits for its HTTP ack here.
    func forgetPollHandOver(of delivery: PendingDelivery) {
        guard delivery.handedToPoll.load(ordering: .acquiring) else { return }
        awaitingHTTPAck.withLock { waiting in
            if waiting[delivery.reference]?.delivery === delivery { waiting[delivery.reference] = nil }
        }
    }

    /// What follows the decision of a live delivery: `delivered`, or the fallback (park or forward) and the removal
    /// of the parked copy when a late ack came meanwhile. Settles the delivery (``PendingDelivery/markSettled()``).
    func afterLocalWait(
        _ delivery: PendingDelivery, delivered: Bool, took: Set<ConnectionID>, of outcome: Outcome,
        fallback: (Set<ConnectionID>) async throws(AffinityError) -> ForwardedDeliveryStatus
    ) async throws(AffinityError) -> ForwardedDeliveryStatus {
        defer { delivery.markSettled() }
        if delivered {
            return .delivered
        }
        if case .parked = delivery.attemptState {
            // a long poll parked it already and handed it to its HTTP client, which did not ack it in time
            return .parked
        }
        logger.trace("no ack in time, parking", metadata: Self.metadata(of: outcome))
        let result: ForwardedDeliveryStatus
        do {
            result = try await fallback(took)
        } catch {
            _ = delivery.parkCompleted()
            throw error
        }
        if delivery.parkCompleted() == .removeParkedCopy {
            try? await store.acknowledge(key: outcome.key, id: outcome.id)
            return .delivered
        }
        return result
    }

    /// Offers a parked outcome to the local subscribers of its key that did not take it live: an active one
    /// receives it, one that is taking its backlog reads it with its next page.
    private func offerParkedCopy(of outcome: Outcome, except excluded: Set<ConnectionID>) {
        for subscriber in registry.subscribers(of: outcome.key) where !excluded.contains(subscriber.connectionID) {
            _ = subscriber.offer(outcome, as: .parked(ParkedOutcomeReference(outcome)))
        }
    }

    /// Parks the outcome, or forwards it to the replica holding its route, following the route when that
    /// replica does not take it (the decisions are ``ForwardingAttempt``'s). After parking for a route of this
    /// replica, a subscriber that registered locally meanwhile (and so may have read the parked list just
    /// before the park) is offered the parked copy, so it is not left waiting until it resubscribes.
    private func parkOrForward(
        _ outcome: Outcome, notifyLocalExcept excluded: Set<ConnectionID>
    ) async throws(AffinityError) -> DeliveryStatus {
        var attempt = ForwardingAttempt(maximumForwards: Self.maximumForwards)
        var action = attempt.start()
        while true {
            switch action {
            case .routeOrPark:
                action = attempt.routed(try await store.routeOrPark(outcome: outcome, localReplica: replicaID))
            case .forward(let route):
                action = attempt.forwarded(await forwardOnce(outcome, to: route))
            case .park(let replica):
                action = attempt.parked(try await store.park(outcome: outcome, ifRoutedTo: replica))
            case .finish(let status, let offerParkedCopy):
                if offerParkedCopy { self.offerParkedCopy(of: outcome, except: excluded) }
                return status
            case .routeKeepsMoving:
                throw AffinityError(code: .unavailable, message: "the route of key \(outcome.key) keeps moving; retry")
            }
        }
    }

    /// One forward; every failure counts as "not taken" (logged), for ``ForwardingAttempt`` to decide.
    private func forwardOnce(_ outcome: Outcome, to route: Route) async -> ForwardingAttempt.ForwardResult {
        guard let forwarder else { return .notTaken }
        do {
            return .answered(try await forwarder.forward(outcome, to: route))
        } catch {
            logger.debug(
                "forward failed",
                metadata: Self.metadata(
                    of: outcome, ["affinity.replica": "\(route.replicaID)", "error.message": "\(error.message)"]))
            return .notTaken
        }
    }

    /// A subscriber acked `entries` (the in-flight records of one outcome id): live deliveries are decided,
    /// parked copies removed (and the id remembered as acknowledged by the store).
    ///
    /// With `settle`, it returns only once the ack took effect everywhere: an ack that came while the delivery
    /// was parking the outcome waits until the delivery removed that copy again.
    func acknowledged(_ entries: [InFlightOutcome], by connection: ConnectionID, settle: Bool = false) async {
        for entry in entries {
            switch entry {
            case .live(let delivery):
                if acknowledgedLive(delivery, by: connection) {
                    // a late ack (the subscriber left, or the ack timeout passed): the store forgets the copy and
                    // remembers the id
                    await removeParkedCopy(of: delivery.reference)
                } else if settle, case .parking = delivery.attemptState {
                    await delivery.waitUntilSettled()
                }
            case .parked(let reference):
                acknowledgedOutcomes.insert(reference)
                await removeParkedCopy(of: reference)
            }
        }
    }

    /// A subscriber acked live deliveries, without waiting (on its event loop): they are decided. Returns the
    /// parked copies that late acks must remove (``removeParkedCopies(_:)``).
    func acknowledged(
        live deliveries: [PendingDelivery], by connection: ConnectionID
    ) -> [ParkedOutcomeReference] {
        var copies: [ParkedOutcomeReference] = []
        for delivery in deliveries where acknowledgedLive(delivery, by: connection) {
            copies.append(delivery.reference)
        }
        return copies
    }

    /// Removes the parked copies of acknowledged outcomes (see ``acknowledged(live:by:)``).
    func removeParkedCopies(_ references: [ParkedOutcomeReference]) async {
        for reference in references { await removeParkedCopy(of: reference) }
    }

    /// Remembers the id and decides the delivery; returns true when its parked copy must be removed (a late ack).
    private func acknowledgedLive(_ delivery: PendingDelivery, by connection: ConnectionID) -> Bool {
        acknowledgedOutcomes.insert(delivery.reference)
        return delivery.acknowledged(by: connection) == .removeParkedCopy
    }

    /// Every live delivery stops waiting for its ack, as if its ack timeout passed (the replica's sessions are
    /// cancelled: deliveries that wait without a task end as those of cancelled tasks do).
    func giveUpWaitingForAcks() {
        ackTimeouts.expireAll()
    }

    /// A subscriber can no longer receive these outcomes; live ones count as lost for it (and are
    /// parked if it was the last one), parked ones stay in the store.
    func lost(_ entries: [InFlightOutcome], by connection: ConnectionID) {
        for entry in entries {
            if case .live(let delivery) = entry { delivery.subscriberLost(connection) }
        }
    }

    /// Registers a local subscription and reads the first page of parked outcomes (route-and-take).
    func subscribe(
        _ subscriber: any OutcomeSubscriber, key: ProcessInstanceKey, route: Route, page: ParkedPageLimit
    ) async throws(AffinityError) -> ParkedPage {
        registry.add(subscriber, for: key, route: route)
        return try await store.subscribe(key: key, route: route, page: page)
    }

    /// The next page of the parked outcomes of `key`.
    func parked(key: ProcessInstanceKey, page: ParkedPageLimit) async throws(AffinityError) -> ParkedPage {
        try await store.parked(key: key, page: page)
    }

    /// Removes local subscriptions and their routes. When the last local subscriber of a key leaves, a shared
    /// store is also given the ids acknowledged for the key on this replica (it remembers them, and removes a
    /// copy a late park left).
    func unsubscribe(_ connection: ConnectionID, keys: [ProcessInstanceKey], route: Route?) async {
        registry.remove(connection, for: keys)
        guard let route else { return }
        for key in keys where !registry.hasSubscribers(of: key) {
            let ids = store.isShared ? acknowledgedOutcomes.ids(of: key) : []
            do {
                try await store.unsubscribe(key: key, route: route, acknowledged: ids)
            } catch {
                logger.debug(
                    "unsubscribe failed", metadata: ["affinity.key": "\(key)", "error.message": "\(error.message)"])
            }
        }
    }

    /// Writes the routes of the local subscriptions (again) and has their subscribers read what was parked
    /// for them meanwhile: after the store lost a route (expired, restarted empty, a second subscriber's
    /// unsubscribe deleted it), outcomes were parked that nobody here would otherwise read.
    func refreshRoutes() async throws(AffinityError) -> Int {
        let routes = registry.localRoutes()
        guard !routes.isEmpty else { return 0 }
        let waiting = try await store.refreshRoutes(routes)
        for key in waiting {
            for subscriber in registry.subscribers(of: key) {
                subscriber.parkedWaiting(for: key)
            }
        }
        if !waiting.isEmpty {
            logger.debug(
                "parked outcomes waiting for local subscribers", metadata: ["affinity.keys": "\(waiting.count)"])
        }
        return routes.count
    }

    // MARK: - Long polls

    /// A long poll took the live `outcome` of `delivery`: parks it first, so that it survives the poll
    /// (its HTTP client acknowledges it with a separate request, possibly on another replica), and keeps
    /// the delivery waiting for that ack. Returns false when the poll must not hand it over (the route
    /// moved, it was acknowledged already, or the store failed); the delivery goes on without the poll.
    func handOverToPoll(
        _ outcome: Outcome, delivery: PendingDelivery, poll: ConnectionID
    ) async -> Bool {
        do {
            switch try await store.park(outcome: outcome, ifRoutedTo: replicaID) {
            case .parked:
                let reference = delivery.reference
                delivery.handedToPoll.store(true, ordering: .releasing)
                awaitingHTTPAck.withLock { $0[reference] = (delivery, poll) }
                let state = delivery.parkedCopyMade()
                if case .waiting = state { return true }
                awaitingHTTPAck.withLock { waiting in
                    if waiting[reference]?.delivery === delivery { waiting[reference] = nil }
                }
                if case .delivered = state {
                    // another subscriber acknowledged it meanwhile: the copy just parked must go
                    await removeParkedCopy(of: reference)
                    return false
                }
                // the delivery gave up waiting and parks (or parked) it too: the poll may hand it over
                return true
            case .alreadyAcknowledged:
                _ = delivery.acknowledged(by: poll)
                return false
            case .routed:
                delivery.subscriberLost(poll)
                return false
            }
        } catch {
            logger.debug("a long poll could not park its outcome", metadata: ["error.message": "\(error.message)"])
            delivery.subscriberLost(poll)
            return false
        }
    }

    /// The HTTP ack of a long poll's client: removes the parked copy (remembering the id as acknowledged) and
    /// decides the live delivery waiting for it on this replica, if any.
    func acknowledgeFromHTTP(key: ProcessInstanceKey, id: String) async throws(AffinityError) {
        let reference = ParkedOutcomeReference(key: key, id: id)
        try await store.acknowledge(key: key, id: id)
        acknowledgedOutcomes.insert(reference)
        if let waiting = awaitingHTTPAck.withLock({ $0.removeValue(forKey: reference) }) {
            _ = waiting.delivery.acknowledged(by: waiting.poll)
        }
    }

    /// The key and id of `outcome` (plus `extra`) for a log record. Built only for a record that is written: a
    /// logger's own metadata is not changed per outcome (a text handler formats it on every change).
    private static func metadata(of outcome: Outcome, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        metadata["affinity.key"] = "\(outcome.key)"
        metadata["affinity.outcome"] = "\(outcome.id)"
        return metadata
    }

    /// Makes the store remember outcomes forwarded here as acknowledged, removing a parked copy: a local client
    /// acknowledged each, but the peer stream broke before the forwarding replica surely had the `delivered`
    /// answer, and that replica parks what it got no answer for while the route still names this one.
    /// One write per key, a failure logged (``OutcomeStore/rememberAcknowledged(_:logger:)``).
    package func rememberAcknowledgedInStore(_ outcomes: [(key: ProcessInstanceKey, id: String)]) async {
        await store.rememberAcknowledged(outcomes, logger: logger)
    }

    private func removeParkedCopy(of outcome: ParkedOutcomeReference) async {
        do {
            try await store.acknowledge(key: outcome.key, id: outcome.id)
        } catch {
            logger.debug(
                "acknowledge failed", metadata: ["affinity.key": "\(outcome.key)", "error.message": "\(error.message)"])
        }
    }
}
