import AffinityProtocol
import CoreMetrics
import Logging
import Synchronization

extension AffinitySession {
    /// Registers a request for `key` and sends `subscribe` when the key is new on this connection.
    func subscribe(_ key: ProcessInstanceKey) throws(AffinityClientError) -> SubscriberID {
        let result = state.withLock { state -> (SubscriberID, ConnectionWriter?)? in
            guard !state.stopped else { return nil }
            state.nextSubscriber += 1
            let subscriber = SubscriberID(value: state.nextSubscriber)
            state.mailboxes[subscriber] = Mailbox()
            let send = state.machine.add(subscriber, key: key)
            return (subscriber, send == nil ? nil : state.writer)
        }
        guard let (subscriber, writer) = result else { throw .stopped(key: key) }
        metrics.requests.increment()
        writer?.send(.subscribe(key: key))
        logger.trace("subscribe", metadata: ["affinity.key": "\(key)"])
        return subscriber
    }

    /// Ends a request: drops its mailbox and sends `unsubscribe` when it was the key's last request.
    func release(_ subscriber: SubscriberID) {
        let (key, writer, existed) = state.withLock { state -> (ProcessInstanceKey?, ConnectionWriter?, Bool) in
            let existed = state.mailboxes.removeValue(forKey: subscriber) != nil
            let key = state.machine.remove(subscriber)
            return (key, key == nil ? nil : state.writer, existed)
        }
        if existed { metrics.requests.decrement() }
        if let key {
            writer?.send(.unsubscribe(key: key))
            logger.trace("unsubscribe", metadata: ["affinity.key": "\(key)"])
        }
    }

    /// Waits for the next outcome of a registered request and acknowledges it once taken.
    func nextOutcome(
        for subscriber: SubscriberID, key: ProcessInstanceKey, timeout: Duration?
    ) async throws
        -> ReceivedOutcome
    {
        guard let mailbox = state.withLock({ $0.mailboxes[subscriber] }) else {
            throw AffinityClientError.stopped(key: key)
        }
        switch await mailbox.next(timeout: timeout) {
        case .value(let outcome):
            await handedOver(outcome)
            return ReceivedOutcome(outcome)
        case .failed(let error):
            throw error
        case .timedOut:
            metrics.timeouts.increment()
            logger.debug("request timed out", metadata: ["affinity.key": "\(key)"])
            throw AffinityClientError.timedOut(key: key, after: timeout ?? .zero)
        case .cancelled:
            throw CancellationError()
        }
    }

    /// A consumer took `outcome`: acknowledge it (once per id) and wait until the replica confirmed the ack,
    /// so that the caller's next step cannot meet this outcome again (see ``AcknowledgementConfirmations``).
    private func handedOver(_ outcome: Outcome) async {
        let writer = state.withLock { state -> ConnectionWriter? in
            state.machine.handedOver(id: outcome.id, key: outcome.key) ? state.writer : nil
        }
        metrics.outcomesReceived.increment()
        guard let writer else { return }
        confirmations.expect(outcome.id)
        writer.send(.confirmedAck(id: outcome.id))
        logger.trace("ack", metadata: ["affinity.key": "\(outcome.key)", "affinity.outcome": "\(outcome.id)"])
        if await !confirmations.wait(for: outcome.id, timeout: Self.confirmationTimeout) {
            logger.debug(
                "the replica did not confirm an ack in time",
                metadata: ["affinity.key": "\(outcome.key)", "affinity.outcome": "\(outcome.id)"])
        }
    }
}
