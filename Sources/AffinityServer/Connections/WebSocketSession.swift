import AffinityProtocol
import CoreMetrics
import Logging
import NIOCore
import NIOWebSocket
import WSCore

/// Runs one WebSocket connection: reads messages, answers them, and writes the connection's
/// outbound queue. Handles the protocol of docs/PROTOCOL.md for both roles.
struct WebSocketSession {
    /// How long to wait for the peer to answer our close before dropping the TCP connection.
    static let closeGrace: Duration = .seconds(3)
    /// The first bytes kept of an oversized message, to find its `id` for the `too_large` answer.
    static let oversizedPrefix = 4096

    let environment: SessionEnvironment
    let context: AffinityWebSocketContext

    private var logger: Logger { context.logger }

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let closeGrace = CloseGraceTimer(channel: context.channel, grace: Self.closeGrace)
        let metrics = environment.metrics
        let connection = WebSocketConnection(
            grantedRoles: context.grantedRoles,
            outboundBudget: environment.configuration.maxOutboundBytes,
            maxSubscriptions: environment.configuration.maxSubscriptions,
            onCloseQueued: { closeGrace.arm() },
            onSlowConsumer: { metrics.slowConsumerCloses.increment() }
        )
        var logger = self.logger
        logger[metadataKey: "affinity.connection"] = "\(connection.connectionID)"
        environment.registry.register(connection)
        metrics.connections(for: nil).increment()
        if environment.isDraining() {
            connection.drain()
        }
        let chains = KeyedOutcomeQueue(limit: environment.configuration.maxOutcomesInProgress)
        await withDiscardingTaskGroup { deliveries in
            await withTaskGroup(of: Void.self) { io in
                io.addTask { await Self.write(connection, to: outbound) }
                do {
                    try await read(
                        inbound, connection: connection, chains: chains, deliveries: &deliveries, logger: logger)
                } catch {
                    logger.debug("read ended", metadata: ["error.message": "\(error)"])
                }
                connection.finishOutbound()
                closeGrace.cancel()
                io.cancelAll()
            }
        }
        let (keys, held, inFlight) = connection.closeAndTakeState()
        environment.registry.unregister(connection)
        metrics.connections(for: connection.role).decrement()
        environment.coordinator.lost(inFlight + held.map(\.inFlight), by: connection.connectionID)
        await environment.coordinator.unsubscribe(
            connection.connectionID, keys: keys, route: route(for: connection))
        logger.debug("connection closed")
    }

    private func route(for connection: WebSocketConnection) -> Route? {
        connection.clientID.map { Route(replicaID: environment.configuration.replicaID, clientID: $0) }
    }

    private static func write(_ connection: WebSocketConnection, to outbound: WebSocketOutboundWriter) async {
        while let item = await connection.nextOutbound() {
            switch item {
            case .frame(let bytes):
                let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: bytes))
                do {
                    try await outbound.write(.custom(frame))
                } catch {
                    return
                }
            case .close(let close):
                try? await outbound.close(WebSocketErrorCode(codeNumber: Int(close.code)), reason: close.reason)
                return
            }
        }
    }

    // MARK: - Reading

    private func read(
        _ inbound: WebSocketInboundStream, connection: WebSocketConnection, chains: KeyedOutcomeQueue,
        deliveries: inout DiscardingTaskGroup, logger: Logger
    ) async throws {
        let limit = environment.configuration.maxMessageBytes
        var message: [UInt8] = []
        var isBinary = false
        var isOversized = false
        for try await frame in inbound {
            switch frame.opcode {
            case .text, .binary:
                isBinary = frame.opcode == .binary
                isOversized = frame.data.readableBytes > limit
                message = Array(frame.data.readableBytesView.prefix(isOversized ? Self.oversizedPrefix : limit))
            case .continuation:
                if !isOversized {
                    if message.count + frame.data.readableBytes > limit {
                        isOversized = true
                        message = Array(message.prefix(Self.oversizedPrefix))
                    } else {
                        message.append(contentsOf: frame.data.readableBytesView)
                    }
                }
            }
            guard frame.fin else { continue }
            let bytes = message
            message = []
            do {
                if isBinary {
                    throw AffinityError.badRequest("binary frames are not supported; send JSON text frames")
                }
                if isOversized {
                    // the id (or key) usually comes before the variables: name it so the sender can match
                    let type = JSONScanner.stringMember("type", inPrefix: bytes)
                    let refMember = type == "subscribe" || type == "unsubscribe" ? "key" : "id"
                    let ref = JSONScanner.stringMember(refMember, inPrefix: bytes)
                    throw AffinityError(code: .tooLarge, message: "message larger than \(limit) bytes", ref: ref)
                }
                let decoded = try AffinityMessage.decode(bytes)
                try await handle(
                    decoded, connection: connection, chains: chains, deliveries: &deliveries, logger: logger)
                connection.recordValidMessage()
            } catch let error as AffinityError {
                report(error, on: connection, logger: logger)
            }
        }
    }

    private func report(_ error: AffinityError, on connection: WebSocketConnection, logger: Logger) {
        environment.metrics.rejected(error.code)
        logger.trace("protocol error", metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
        connection.send(.error(error))
        if connection.recordError() >= environment.configuration.maxConsecutiveErrors {
            logger.debug("closing a connection that keeps violating the protocol")
            connection.close(code: 1008, reason: "too many protocol errors")
        }
    }

    private func handle(
        _ message: AffinityMessage, connection: WebSocketConnection, chains: KeyedOutcomeQueue,
        deliveries: inout DiscardingTaskGroup, logger: Logger
    ) async throws(AffinityError) {
        if case .hello(let role, let clientID) = message {
            switch connection.hello(role: role, clientID: clientID) {
            case .welcome:
                environment.metrics.connections(for: nil).decrement()
                environment.metrics.connections(for: role).increment()
                connection.send(
                    .welcome(replica: environment.configuration.replicaID, protocolVersion: ProtocolVersion.current))
                logger.debug(
                    "hello", metadata: ["affinity.role": "\(role.rawValue)", "affinity.client": "\(clientID)"])
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
        case .ack(let id):
            try requireRole(.client, role, for: message, ref: id)
            await environment.coordinator.acknowledged(connection.takeInFlight(id: id), by: connection.connectionID)
        case .outcome(let outcome):
            try requireRole(.worker, role, for: message, ref: outcome.id)
            switch chains.enqueue(outcome) {
            case .queued:
                return
            case .full:
                throw AffinityError(
                    code: .unavailable,
                    message: "\(chains.limit) outcomes are already in progress on this connection; retry later",
                    ref: outcome.id)
            case .startChain:
                break
            }
            let coordinator = environment.coordinator
            deliveries.addTask {
                var next: Outcome? = outcome
                while let current = next {
                    do throws(AffinityError) {
                        let status = try await coordinator.deliver(current)
                        connection.send(.result(id: current.id, status: status))
                    } catch {
                        connection.send(.error(error.withRef(current.id)))
                    }
                    next = chains.next(for: outcome.key)
                }
            }
        case .hello, .welcome, .subscribed, .unsubscribed, .result, .drain, .error:
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
            let parked: [Outcome]
            do {
                parked = try await environment.coordinator.subscribe(connection, key: key, route: route)
            } catch {
                if let released = connection.unsubscribe(key) {
                    environment.coordinator.lost(released, by: connection.connectionID)
                }
                await environment.coordinator.unsubscribe(connection.connectionID, keys: [key], route: nil)
                throw error.withRef(key.description)
            }
            if let lost = connection.completeSubscribe(key, parked: parked) {
                environment.coordinator.lost(lost.map(\.inFlight), by: connection.connectionID)
            }
        }
    }
}
