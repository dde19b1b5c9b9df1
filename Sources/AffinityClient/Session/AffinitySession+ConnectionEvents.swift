import AffinityProtocol
import CoreMetrics
import Logging
import Synchronization

extension AffinitySession: ConnectionEvents {
    func connectionReady(writer: ConnectionWriter, replica: String) {
        let keys = state.withLock { state -> [ProcessInstanceKey] in
            guard !state.stopped else { return [] }
            state.writer = writer
            state.replica = replica
            return state.machine.connected()
        }
        for key in keys { writer.send(.subscribe(key: key)) }
        metrics.connected.record(1)
        logger.info(
            "connected to the affinity service",
            metadata: ["affinity.replica": "\(replica)", "affinity.resubscribed": "\(keys.count)"])
    }

    func connectionEnded() {
        state.withLock { state in
            state.writer = nil
            state.machine.disconnected()
        }
        confirmations.releaseAll()
        metrics.connected.record(0)
        metrics.reconnects.increment()
    }

    func received(_ message: AffinityMessage) {
        switch message {
        case .outcome(let outcome):
            receivedOutcome(outcome)
        case .subscribed(let key):
            state.withLock { $0.machine.confirmed(key) }
            logger.trace("subscribed", metadata: ["affinity.key": "\(key)"])
        case .unsubscribed(let key):
            logger.trace("unsubscribed", metadata: ["affinity.key": "\(key)"])
        case .error(let code, let text, let ref):
            receivedError(AffinityError(code: code, message: text, ref: ref))
        case .acknowledged(let id):
            confirmations.confirm(id)
        case .hello, .welcome, .subscribe, .unsubscribe, .ack, .confirmedAck, .result, .drain:
            logger.debug("ignoring an unexpected message", metadata: ["affinity.type": "\(message.type)"])
        }
    }

    private func receivedOutcome(_ outcome: Outcome) {
        let (decision, deliveries, writer) = state.withLock {
            state -> (SubscriptionStateMachine.ReceiveDecision, [Mailbox<Outcome>], ConnectionWriter?) in
            let decision = state.machine.received(outcome)
            guard case .deliver(let subscribers) = decision else { return (decision, [], state.writer) }
            return (decision, subscribers.compactMap { state.mailboxes[$0] }, state.writer)
        }
        let metadata: Logger.Metadata = ["affinity.key": "\(outcome.key)", "affinity.outcome": "\(outcome.id)"]
        switch decision {
        case .deliver:
            logger.trace("outcome", metadata: metadata)
            for mailbox in deliveries { mailbox.push(outcome) }
        case .acknowledgeDuplicate:
            logger.trace("duplicate outcome acknowledged again", metadata: metadata)
            metrics.duplicates.increment()
            writer?.send(.ack(id: outcome.id))
        case .dropDuplicate:
            logger.trace("duplicate outcome dropped", metadata: metadata)
            metrics.duplicates.increment()
        case .noSubscriber:
            logger.trace("outcome for a key without a request; left for the replica to park", metadata: metadata)
        }
    }

    /// An error frame: one about a subscribed key ends that key's requests (e.g. `forbidden` when the
    /// replica's subscription limit is reached); others are logged.
    private func receivedError(_ error: AffinityError) {
        let key = error.ref.flatMap { ProcessInstanceKey($0) }
        let mailboxes = state.withLock { state -> [Mailbox<Outcome>] in
            guard let key else { return [] }
            return state.machine.subscribers(of: key).compactMap { state.mailboxes[$0] }
        }
        logger.warning(
            "the affinity service answered with an error",
            metadata: [
                "affinity.code": "\(error.code)", "affinity.ref": "\(error.ref ?? "-")", "error": "\(error.message)",
            ])
        guard let key, !mailboxes.isEmpty else { return }
        let failure = AffinityClientError(
            code: error.code, message: error.message, processInstanceKey: key, cause: error)
        for mailbox in mailboxes { mailbox.fail(failure) }
    }
}
