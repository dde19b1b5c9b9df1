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
/// message or the end arrives, and it runs until no message is queued and none of its worker's
/// delivery chains runs (``runUntilIdle()``). Messages are still handled one after the other, in
/// order, and the next ones while deliveries run, as by a task that waited for them.
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
        inbox.attach { [runner] in runner.schedule(self) }
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
            let bytes: [UInt8]
            switch message {
            case .text(let text):
                bytes = text
            case .readParked(let key):
                await readParked(key, connection: connection)
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
            let decoded = try AffinityMessage.decode(bytes)
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
