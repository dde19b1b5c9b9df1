import AffinityProtocol
import CoreMetrics
import Synchronization

/// Delivering a worker's outcome without a task that waits for the ack (issue #16): the session starts the
/// delivery on the event loop and the decision calls back (``PendingDelivery/whenDecided(timeouts:_:)``);
/// only what needs the store continues in a task (``finish(_:)``). The steps are those of
/// ``deliver(_:broadcastToLegacyClients:)``, shared with it.
extension DeliveryCoordinator {
    /// What became of a delivery started with ``startDelivery(_:whenDecided:)``.
    enum DeliveryProgress: Sendable {
        /// Answered (counted and logged like ``deliver(_:broadcastToLegacyClients:)``'s answers).
        case answered(DeliveryStatus)
        /// No local subscriber took the outcome, or none acked it in time: the rest needs the store, in a
        /// task (``finish(_:)``).
        case needsStore(StoreStep)
    }

    /// A delivery of ``startDelivery(_:whenDecided:)`` whose rest needs the store (park, or forward).
    final class StoreStep: Sendable, Equatable {
        let outcome: Outcome
        let started: ContinuousClock.Instant
        /// The live delivery that was not acked, and the subscribers that took it.
        let live: (delivery: PendingDelivery, took: Set<ConnectionID>)?

        init(
            _ outcome: Outcome, started: ContinuousClock.Instant, live: (PendingDelivery, Set<ConnectionID>)?
        ) {
            self.outcome = outcome
            self.started = started
            self.live = live.map { (delivery: $0.0, took: $0.1) }
        }

        static func == (lhs: StoreStep, rhs: StoreStep) -> Bool { lhs === rhs }
    }

    /// Starts delivering `outcome` as ``deliver(_:broadcastToLegacyClients:)`` does, without a task waiting for the
    /// ack (e.g. on the worker's event loop): pushes it to the local subscribers and returns. Returns what became of
    /// it when that is known at once; otherwise returns nil and calls `whenDecided` once, when a subscriber acked (on
    /// the ack's thread), the ack timeout passed or every subscriber is gone. Not for replicas with legacy clients
    /// (``legacy``): their outcomes are broadcast first, which waits.
    func startDelivery(
        _ outcome: Outcome, whenDecided: @escaping @Sendable (DeliveryProgress) -> Void
    ) -> DeliveryProgress? {
        activeDeliveries.add(1, ordering: .relaxed)
        metrics.outcomesReceived.increment()
        let started = ContinuousClock.now
        switch pushToLocalSubscribers(outcome) {
        case .acknowledgedAlready:
            return answeredAtOnce(.delivered, of: outcome, started: started)
        case .noSubscribers:
            return .needsStore(StoreStep(outcome, started: started, live: nil))
        case .pushed(let delivery, let took):
            let decision = delivery.whenDecided(timeouts: ackTimeouts) { delivered in
                whenDecided(self.decided(delivery, delivered: delivered, took: took, of: outcome, started: started))
            }
            guard let decision else { return nil }
            return decided(delivery, delivered: decision, took: took, of: outcome, started: started)
        }
    }

    /// The rest of a delivery of ``startDelivery(_:whenDecided:)`` that needs the store: parks the outcome, or
    /// forwards it to the replica that holds its route.
    func finish(_ step: StoreStep) async throws(AffinityError) -> DeliveryStatus {
        defer { deliveryEnded() }
        let outcome = step.outcome
        do {
            let result: ForwardedDeliveryStatus
            if let live = step.live {
                result = try await afterLocalWait(live.delivery, delivered: false, took: live.took, of: outcome) {
                    excluded throws(AffinityError) in
                    try await parkOrForwardLocally(outcome, notifyLocalExcept: excluded)
                }
            } else {
                result = try await parkOrForwardLocally(outcome, notifyLocalExcept: [])
            }
            let status = try Self.status(of: result, for: outcome)
            recordAnswer(status, of: outcome, started: step.started)
            return status
        } catch {
            throw failed(outcome, error)
        }
    }

    private func decided(
        _ delivery: PendingDelivery, delivered: Bool, took: Set<ConnectionID>, of outcome: Outcome,
        started: ContinuousClock.Instant
    ) -> DeliveryProgress {
        forgetPollHandOver(of: delivery)
        guard delivered else { return .needsStore(StoreStep(outcome, started: started, live: (delivery, took))) }
        delivery.markSettled()
        return answeredAtOnce(.delivered, of: outcome, started: started)
    }

    private func answeredAtOnce(
        _ status: DeliveryStatus, of outcome: Outcome, started: ContinuousClock.Instant
    ) -> DeliveryProgress {
        recordAnswer(status, of: outcome, started: started)
        deliveryEnded()
        return .answered(status)
    }
}
