import AffinityProtocol
import CoreMetrics
import Logging
import Synchronization

/// Runs one WebSocket connection: takes the messages its channel handler assembled, answers them,
/// and cleans up when the connection ends. Handles the protocol of docs/PROTOCOL.md for both roles.
/// Writing is done by ``WebSocketConnection`` on the channel's event loop; pings and the close
/// handshake by ``AffinityWebSocketHandler``.
///
/// The session has a task only while it has work (``SessionRunner``): its inbox wakes it when a
/// message or the end arrives, and it runs until no message is queued and none of its tasks runs
/// (``runUntilIdle()``). Messages are still handled one after the other, in order, and the next ones
/// while deliveries run, as by a task that waited for them.
///
/// A message that arrives while the session is idle and that needs no waiting, a client's `ack` of live
/// outcomes or a worker's `outcome` for which the in-flight window has room, is handled at once on the
/// event loop, without a task (``handleImmediately(_:)``). A worker's delivery chains run without a task
/// too: each outcome is pushed to the local subscribers, and the ack that decides it answers the worker
/// and starts the next outcome of the key (``DeliveryCoordinator/startDelivery(_:whenDecided:)``); only
/// what needs the store (parking, forwarding) runs in a task of the session.
final class WebSocketSession: Sendable {
    let connection: WebSocketConnection
    private let inbox: InboundMessageQueue
    private let runner: SessionRunner
    /// A worker's outcome chains, made with its first outcome (a client never needs them).
    private let chains = Mutex<KeyedOutcomeQueue?>(nil)

    /// What every session of the replica shares, held once by the runner (not copied into each session).
    private var environment: SessionEnvironment { runner.environment }
    private var logger: Logger { runner.logger }

    init(connection: WebSocketConnection, inbox: InboundMessageQueue, runner: SessionRunner) {
        self.connection = connection
        self.inbox = inbox
        self.runner = runner
    }

    /// Registers the connection and lets its messages wake the session (the first ones may have
    /// arrived already). No task waits while the connection is idle.
    func start() {
        guard runner.start(self) else {
            // the replica stopped running sessions: nothing would answer this connection
            connection.closeChannel()
            return
        }
        environment.registry.register(connection)
        environment.metrics.connections(for: nil).increment()
        if environment.isDraining() {
            connection.drain()
        }
        inbox.attach(wake: { [runner] in runner.schedule(self) }, immediate: self)
    }

    /// Wakes the session unless it runs (on cancellation: it then ends).
    func wakeIfIdle() {
        inbox.wakeIfIdle()
    }

    /// Handles the queued messages, and those that arrive meanwhile, until the session is idle (or
    /// cleans up once the connection ended).
    func runUntilIdle() async {
        while true {
            let ended = await withDiscardingTaskGroup(returning: Bool.self) { deliveries in
                while true {
                    switch await inbox.nextUntilIdle() {
                    case .message(let message):
                        await receive(message, connection: connection, deliveries: &deliveries)
                    case .work(let work):
                        if case .deliveryNeedsStore(let step) = work {
                            finishInTask(step, deliveries: &deliveries)
                        }
                    case .idle:
                        return false
                    case .end:
                        connection.finishOutbound()
                        return true
                    }
                }
            }
            if ended {
                await end()
                return
            }
            if inbox.stopIfIdle() { return }
        }
    }

    /// The connection ended: releases its subscriptions and outcomes in flight, and closes it.
    private func end() async {
        let metrics = environment.metrics
        let (keys, inFlight) = connection.closeAndTakeState()
        environment.registry.unregister(connection)
        metrics.connections(for: connection.role).decrement()
        environment.coordinator.lost(inFlight, by: connection.connectionID)
        await environment.coordinator.unsubscribe(
            connection.connectionID, keys: keys, route: route(for: connection))
        logger.debug("connection closed", metadata: ["affinity.connection": "\(connection.connectionID)"])
        // the session ended when the peer closed, the channel closed, or the task was cancelled
        inbox.detach()
        connection.closeChannel()
        runner.ended(self)
    }

    private func route(for connection: WebSocketConnection) -> Route? {
        connection.clientID.map { Route(replicaID: environment.configuration.replicaID, clientID: $0) }
    }

    /// The worker's outcome chains, made on first use.
    private func outcomeChains() -> KeyedOutcomeQueue {
        chains.withLock { chains in
            if let chains { return chains }
            let made = KeyedOutcomeQueue(
                maxCount: environment.configuration.maxOutcomesInFlight,
                maxBytes: environment.configuration.maxInFlightBytes)
            chains = made
            return made
        }
    }

    // MARK: - Reading

    private func receive(
        _ message: InboundMessage, connection: WebSocketConnection, deliveries: inout DiscardingTaskGroup
    ) async {
        do throws(AffinityError) {
            let decoded: AffinityMessage
            switch message {
            case .text(let text):
                decoded = try AffinityMessage.decode(text)
            case .decoded(let message):
                decoded = message
            case .readParked(let key):
                await readParked(key, connection: connection)
                return
            case .removeParkedCopies(let references):
                await environment.coordinator.removeParkedCopies(references)
                return
            case .deliveryNeedsStore(let step):
                // handed over as work (``InboundMessageQueue/pushWork(_:)``), never as a message
                finishInTask(step, deliveries: &deliveries)
                return
            case .binary:
                throw AffinityError.badRequest("binary frames are not supported; send JSON text frames")
            case .oversized(let prefix):
                // the id (or key) usually comes before the variables: name it so the sender can match
                let type = JSONScanner.stringMember("type", inPrefix: prefix)
                let refMember = type == "subscribe" || type == "unsubscribe" ? "key" : "id"
                let ref = JSONScanner.stringMember(refMember, inPrefix: prefix)
                throw AffinityError(
                    code: .tooLarge, message: "message larger than \(environment.configuration.maxMessageBytes) bytes",
                    ref: ref)
            }
            try await handle(decoded, connection: connection, deliveries: &deliveries)
            connection.recordValidMessage()
        } catch {
            report(error, on: connection)
        }
    }

    private func report(_ error: AffinityError, on connection: WebSocketConnection) {
        environment.metrics.rejected(error.code)
        logger.trace("protocol error", metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
        connection.send(.error(error))
        if connection.recordError() >= environment.configuration.maxConsecutiveErrors {
            logger.debug("closing a connection that keeps violating the protocol")
            connection.close(code: 1008, reason: "too many protocol errors")
        }
    }

    private func handle(
        _ message: AffinityMessage, connection: WebSocketConnection, deliveries: inout DiscardingTaskGroup
    ) async throws(AffinityError) {
        if case .hello(let role, let clientID) = message {
            switch connection.hello(role: role, clientID: clientID) {
            case .welcome:
                environment.metrics.connections(for: nil).decrement()
                environment.metrics.connections(for: role).increment()
                connection.send(
                    .welcome(replica: environment.configuration.replicaID, protocolVersion: ProtocolVersion.current))
                logger.debug(
                    "hello",
                    metadata: [
                        "affinity.connection": "\(connection.connectionID)", "affinity.role": "\(role.rawValue)",
                        "affinity.client": "\(clientID)",
                    ])
                return
            case .alreadyHello:
                throw AffinityError.badRequest("hello was already sent on this connection")
            case .forbidden:
                throw AffinityError(code: .forbidden, message: "this token may not act as a \(role.rawValue)")
            }
        }
        guard let role = connection.role, let clientID = connection.clientID else {
            throw AffinityError.badRequest("send hello first")
        }
        let route = Route(replicaID: environment.configuration.replicaID, clientID: clientID)
        switch message {
        case .subscribe(let key):
            try requireRole(.client, role, for: message, ref: key.description)
            try await subscribe(key, connection: connection, route: route)
        case .unsubscribe(let key):
            try requireRole(.client, role, for: message, ref: key.description)
            if let released = connection.unsubscribe(key) {
                environment.coordinator.lost(released, by: connection.connectionID)
                await environment.coordinator.unsubscribe(connection.connectionID, keys: [key], route: route)
            }
            connection.send(.unsubscribed(key: key))
        case .ack(let id), .confirmedAck(let id):
            try requireRole(.client, role, for: message, ref: id)
            // counts whatever became of the subscription since (an ack after the unsubscribe too)
            let entries = connection.takeInFlight(id: id)
            let confirm: Bool
            if case .confirmedAck = message { confirm = true } else { confirm = false }
            await environment.coordinator.acknowledged(entries, by: connection.connectionID, settle: confirm)
            if confirm {
                // the parked copy is gone and the id remembered: the client may answer its own caller now
                connection.send(.acknowledged(id: id))
            }
            for case .parked(let reference) in entries where connection.acknowledgedParked(reference.key, id: id) {
                await readParked(reference.key, connection: connection)
            }
        case .outcome(let outcome):
            try requireRole(.worker, role, for: message, ref: outcome.id)
            // back-pressure: at the connection's bound of outcomes in flight this waits for answers, and
            // reading from the socket pauses meanwhile (the inbox fills)
            let chains = outcomeChains()
            switch await chains.enqueue(outcome) {
            case .queued:
                return
            case .cancelled:
                throw AffinityError(code: .unavailable, message: "the connection is closing", ref: outcome.id)
            case .startChain:
                break
            }
            let coordinator = environment.coordinator
            if coordinator.legacy == nil {
                inbox.heldWorkStarted()
                driveChain(from: outcome, chains: chains)
                return
            }
            let inbox = self.inbox
            // the session keeps running (and taking messages) until the chain ended
            inbox.workStarted()
            deliveries.addTask {
                defer { inbox.workEnded() }
                var next: Outcome? = outcome
                while let current = next {
                    do throws(AffinityError) {
                        let status = try await coordinator.deliver(current)
                        connection.send(.result(id: current.id, status: status))
                    } catch {
                        connection.send(.error(error.withRef(current.id)))
                    }
                    next = chains.next(after: current)
                }
            }
        case .hello, .welcome, .subscribed, .unsubscribed, .result, .drain, .error, .acknowledged:
            throw AffinityError(code: .unknownType, message: "\"\(message.type)\" is not a message the server accepts")
        }
    }

    // MARK: - Delivery chains without a task

    /// Delivers the outcomes of one key's chain one after the other without waiting: each is pushed to the
    /// local subscribers, and the decision of its delivery (an ack, on the client's event loop) answers the
    /// worker and goes on with the next. The chain holds the session (``InboundMessageQueue/heldWorkStarted()``)
    /// until it ends; a delivery that needs the store continues in a task (``finishInTask(_:deliveries:)``).
    private func driveChain(from first: Outcome?, chains: KeyedOutcomeQueue) {
        let coordinator = environment.coordinator
        var next = first
        while let current = next {
            let progress = coordinator.startDelivery(current) { progress in
                self.driveChain(from: self.answer(current, progress, chains: chains), chains: chains)
            }
            // nil: waiting for the decision, which goes on with the chain
            guard let progress else { return }
            next = answer(current, progress, chains: chains)
        }
    }

    /// Answers the worker; returns the next outcome of the chain, nil when the chain ended or continues in a task.
    private func answer(
        _ outcome: Outcome, _ progress: DeliveryCoordinator.DeliveryProgress, chains: KeyedOutcomeQueue
    ) -> Outcome? {
        switch progress {
        case .answered(let status):
            connection.send(.result(id: outcome.id, status: status))
            return next(after: outcome, chains: chains)
        case .needsStore(let step):
            inbox.pushWork(.deliveryNeedsStore(step))
            return nil
        }
    }

    /// The next outcome of `outcome`'s chain; nil when the chain ended.
    private func next(after outcome: Outcome, chains: KeyedOutcomeQueue) -> Outcome? {
        let next = chains.next(after: outcome)
        if next == nil { inbox.heldWorkEnded() }
        return next
    }

    /// Parks or forwards an outcome whose delivery needs the store, in a task of the session, then goes on
    /// with its chain.
    private func finishInTask(_ step: DeliveryCoordinator.StoreStep, deliveries: inout DiscardingTaskGroup) {
        let coordinator = environment.coordinator
        let connection = connection
        let inbox = inbox
        let chains = outcomeChains()
        inbox.workStarted()
        deliveries.addTask {
            defer { inbox.workEnded() }
            let outcome = step.outcome
            do throws(AffinityError) {
                let status = try await coordinator.finish(step)
                connection.send(.result(id: outcome.id, status: status))
            } catch {
                connection.send(.error(error.withRef(outcome.id)))
            }
            self.driveChain(from: self.next(after: outcome, chains: chains), chains: chains)
        }
    }

    private func requireRole(
        _ needed: PeerRole, _ actual: PeerRole, for message: AffinityMessage, ref: String
    ) throws(AffinityError) {
        guard needed == actual else {
            throw AffinityError(
                code: .forbidden,
                message: "\"\(message.type)\" is only for \(needed.rawValue)s; this connection is a \(actual.rawValue)",
                ref: ref)
        }
    }

    private func subscribe(
        _ key: ProcessInstanceKey, connection: WebSocketConnection, route: Route
    ) async throws(AffinityError) {
        switch connection.beginSubscribe(key) {
        case .limitReached:
            throw AffinityError(
                code: .forbidden,
                message:
                    "too many subscriptions on this connection (limit \(environment.configuration.maxSubscriptions))",
                ref: key.description)
        case .started, .alreadySubscribed:
            let page: ParkedPage
            do {
                page = try await environment.coordinator.subscribe(
                    connection, key: key, route: route, page: environment.configuration.parkedPage)
            } catch  where error.code == .unavailable {
                // The store is unreachable: the subscription stays and takes local outcomes; its route is written
                // when the store is back (the write-back), and what was parked meanwhile is read then.
                logger.debug(
                    "subscribed while the store is unreachable",
                    metadata: ["affinity.key": "\(key)", "error.message": "\(error.message)"])
                page = .empty
            } catch {
                if let released = connection.unsubscribe(key) {
                    environment.coordinator.lost(released, by: connection.connectionID)
                }
                await environment.coordinator.unsubscribe(connection.connectionID, keys: [key], route: nil)
                throw error.withRef(key.description)
            }
            await handOver(page, of: key, confirm: true, connection: connection)
        }
    }

    /// Reads the next page of `key`'s parked outcomes and hands it over.
    private func readParked(_ key: ProcessInstanceKey, connection: WebSocketConnection) async {
        let page: ParkedPage
        do {
            page = try await environment.coordinator.parked(key: key, page: environment.configuration.parkedPage)
        } catch {
            logger.debug(
                "reading parked outcomes failed; the next route refresh tries again",
                metadata: ["affinity.key": "\(key)", "error.message": "\(error.message)"])
            connection.readFailed(key)
            return
        }
        await handOver(page, of: key, confirm: false, connection: connection)
    }

    /// Hands a page over; reads the next one at once when the page was empty but more was parked meanwhile.
    private func handOver(
        _ page: ParkedPage, of key: ProcessInstanceKey, confirm: Bool, connection: WebSocketConnection
    ) async {
        if connection.handOver(page, of: key, confirm: confirm) == .readAgain {
            await readParked(key, connection: connection)
        }
    }
}

// MARK: - Messages handled on the event loop

extension WebSocketSession: ImmediateMessageHandler {
    /// A client's `ack` of live outcomes and a worker's `outcome` that finds room in the in-flight window, handled
    /// at once (on the event loop, while the session is idle: no message of the connection is queued or being
    /// handled, so the order is kept). Anything else, and anything that fails, is left to the session.
    func handleImmediately(_ message: InboundMessage) -> InboundMessage? {
        guard case .text(let bytes) = message else { return message }
        // a message that does not decode is answered by the session
        guard let decoded = try? AffinityMessage.decode(bytes) else { return message }
        let handled: Bool
        switch decoded {
        case .ack(let id): handled = acknowledgeImmediately(id)
        case .outcome(let outcome): handled = deliverImmediately(outcome)
        default: handled = false
        }
        guard handled else { return .decoded(decoded) }
        connection.recordValidMessage()
        return nil
    }

    /// A client's ack whose in-flight entries are all live deliveries: decides them (answering their workers).
    private func acknowledgeImmediately(_ id: String) -> Bool {
        guard connection.role == .client, let deliveries = connection.takeLiveInFlight(id: id) else { return false }
        let copies = environment.coordinator.acknowledged(live: deliveries, by: connection.connectionID)
        // late acks: the session removes their parked copies before it takes the connection's next message
        if !copies.isEmpty { inbox.push(.removeParkedCopies(copies)) }
        return true
    }

    /// A worker's outcome when the window has room: queued behind its key's chain, or starts one.
    private func deliverImmediately(_ outcome: Outcome) -> Bool {
        guard connection.role == .worker, environment.coordinator.legacy == nil else { return false }
        let chains = outcomeChains()
        switch chains.tryEnqueue(outcome) {
        case .none, .cancelled:
            // no room: the session waits for it, reading paused
            return false
        case .queued:
            return true
        case .startChain:
            inbox.heldWorkStarted()
            driveChain(from: outcome, chains: chains)
            return true
        }
    }
}
