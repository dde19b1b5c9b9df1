import AffinityProtocol
import CoreMetrics
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// HTTP/1.1 with a WebSocket upgrade on `/v1/ws`, deciding the upgrade itself.
///
/// Hummingbird's own upgrade channel answers every refused upgrade with an empty 400. This one
/// answers a refused upgrade (wrong token, draining, wrong path) with the real status (401, 503,
/// 404) and a JSON error body, and closes the connection.
///
/// Two bounds hold before the upgrade: a connection whose first request head has not arrived
/// within ``AffinityConfiguration/handshakeTimeout`` is closed (and so is a plain HTTP connection
/// idle that long between requests), and an upgrade that would exceed
/// ``AffinityConfiguration/maxConnections`` WebSocket connections is refused with 503
/// `unavailable` (the slot is taken at the upgrade and given back when the channel closes).
///
/// An upgraded protocol v1 connection costs its channel and no task: frames are handled by
/// ``AffinityWebSocketHandler`` on the event loop, written by ``WebSocketConnection`` without a
/// writer task, and the ``WebSocketSession`` runs in a task of the ``SessionRunner`` only while it
/// has work. The task the server runs per connection ends after the upgrade (a legacy protocol
/// connection keeps it for its session).
struct AffinityServerChannel: ServerChildChannel, HTTPChannelHandler {
    /// An upgraded WebSocket: its shared state and the messages its handler assembles.
    struct WebSocketUpgrade: Sendable {
        let connection: WebSocketConnection
        let inbox: InboundMessageQueue
        /// A connection of the Node package's protocol on `/` (with `--legacy-protocol`).
        let legacy: Bool
    }

    enum UpgradeResult: Sendable {
        case websocket(WebSocketUpgrade)
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, HTTPResponse.Status, AffinityError)
    }

    /// Why an upgrade request was refused.
    struct Refusal: Sendable {
        var status: HTTPResponse.Status
        var error: AffinityError
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    /// The WebSocket path.
    static let webSocketPath = "/v1/ws"
    /// The path of the Node package's protocol (with `--legacy-protocol`).
    static let legacyPath = "/"
    /// Receive buffer sizes of a connection before its upgrade. NIO keeps a channel's first receive
    /// buffer for the channel's life (after the upgrade, ``MessageSizedRecvAllocator`` allocates
    /// every read's buffer anew), so it starts at the smallest size: an upgrade request takes a
    /// few reads more, and an idle WebSocket keeps 64 bytes instead of 512.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 64, maximum: 65536)

    let responder: HTTPChannelHandler.Responder
    /// What every session of this replica shares (configuration, registry, coordinator, metrics).
    let environment: SessionEnvironment
    /// Runs the protocol v1 sessions while they have work.
    let sessions: SessionRunner
    /// Returns the roles granted to an upgrade request with this Authorization header, or the
    /// error to refuse it with.
    let admit: @Sendable (_ authorization: String?) -> Result<Set<PeerRole>, AffinityError>

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // NIO keeps each channel's first receive buffer for reuse: start it small, since most
            // connections are idle WebSockets (it grows on full reads, up to 64 KiB, for large
            // requests)
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
            let admit = self.admit
            let environment = self.environment
            let configuration = environment.configuration
            let refusal = NIOLoopBoundBox<Refusal?>(nil, eventLoop: channel.eventLoop)
            let upgrader = WebSocketUpgrader<UpgradeResult>(
                shouldUpgrade: { channel, head in
                    /// Takes a connection slot (released when the channel closes), or refuses with 503.
                    func admitWithinTheLimit() -> EventLoopFuture<HTTPHeaders?> {
                        let slots = environment.connectionSlots
                        guard slots.take() else {
                            environment.metrics.connectionsRefused.increment()
                            refusal.value = Refusal(
                                status: .serviceUnavailable,
                                error: AffinityError(
                                    code: .unavailable,
                                    message:
                                        "this replica holds its maximum of \(slots.limit) connections; connect to another one"
                                ))
                            return channel.eventLoop.makeSucceededFuture(nil)
                        }
                        channel.closeFuture.whenComplete { _ in slots.release() }
                        return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
                    }
                    if configuration.legacyProtocol && Self.path(of: head.uri) == Self.legacyPath {
                        // the Node package sends no credentials: the endpoint is open (see --legacy-protocol)
                        guard !environment.isDraining() else {
                            refusal.value = Refusal(
                                status: .serviceUnavailable,
                                error: AffinityError(code: .unavailable, message: "this replica is draining"))
                            return channel.eventLoop.makeSucceededFuture(nil)
                        }
                        return admitWithinTheLimit()
                    }
                    guard Self.path(of: head.uri) == Self.webSocketPath else {
                        refusal.value = Refusal(
                            status: .notFound,
                            error: .badRequest("no WebSocket endpoint here; use \(Self.webSocketPath)"))
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    switch admit(head.headers.first(name: "authorization")) {
                    case .success:
                        return admitWithinTheLimit()
                    case .failure(let error):
                        refusal.value = Refusal(status: HTTPErrorResponse.status(for: error.code), error: error)
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        let legacy = configuration.legacyProtocol && Self.path(of: head.uri) == Self.legacyPath
                        let roles: Set<PeerRole> =
                            legacy ? [] : (try? admit(head.headers.first(name: "authorization")).get()) ?? []
                        let metrics = environment.metrics
                        let inbox = InboundMessageQueue(channel: channel)
                        // about one message per read, one read per event-loop turn (InboundReadSizer)
                        let readSizer = NIOLoopBoundBox(InboundReadSizer(), eventLoop: channel.eventLoop)
                        try channel.syncOptions?.setOption(
                            ChannelOptions.recvAllocator, value: MessageSizedRecvAllocator(sizer: readSizer))
                        try channel.syncOptions?.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
                        let connection = WebSocketConnection(
                            grantedRoles: roles, channel: channel, inbox: inbox,
                            outboundBudget: configuration.maxOutboundBytes,
                            maxSubscriptions: configuration.maxSubscriptions,
                            maxUnacknowledged: configuration.maxUnacknowledgedPerConnection, legacy: legacy,
                            onSlowConsumer: { metrics.slowConsumerCloses.increment() })
                        try channel.pipeline.syncOperations.addHandler(
                            AffinityWebSocketHandler(
                                connection: connection, inbox: inbox, readSizer: readSizer,
                                messageLimit: configuration.maxMessageBytes,
                                frameLimit: configuration.webSocketFrameLimit,
                                pingInterval: TimeAmount(configuration.pingInterval),
                                closeGrace: TimeAmount(configuration.closeHandshakeTimeout)))
                        return UpgradeResult.websocket(
                            WebSocketUpgrade(connection: connection, inbox: inbox, legacy: legacy))
                    }
                }
            )
            let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        // a kept-alive connection idle that long between requests (or stalled in a
                        // request) is closed as one that never sent a head; an answer in progress
                        // (a long poll) is not idle
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: configuration.handshakeTimeout, logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if let refused = refusal.value {
                            return UpgradeResult.refused(asyncChannel, refused.status, refused.error)
                        }
                        return UpgradeResult.notUpgraded(asyncChannel)
                    }
                }
            )
            var pipelineConfiguration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: upgradeConfiguration)
            pipelineConfiguration.enablePipelining = false
            pipelineConfiguration.enableErrorHandling = false
            pipelineConfiguration.enableResponseHeaderValidation = false
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: pipelineConfiguration)
            // the result is decided once the first request head arrived (or the channel closed)
            let metrics = environment.metrics
            let handshakeTimer = channel.eventLoop.scheduleTask(in: TimeAmount(configuration.handshakeTimeout)) {
                metrics.handshakeTimeouts.increment()
                channel.close(promise: nil)
            }
            result.whenComplete { _ in handshakeTimer.cancel() }
            return Value(upgradeResult: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let status, let error):
                logger.debug("upgrade refused", metadata: ["error.code": "\(error.code)"])
                try await http.executeThenClose { _, outbound in
                    let body = AffinityMessage.error(error).encoded()
                    var headers: HTTPFields = [
                        .connection: "close", .contentType: "application/json", .contentLength: "\(body.count)",
                    ]
                    if error.code == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
                    try await outbound.write(
                        contentsOf: [
                            .head(HTTPResponse(status: status, headerFields: headers)),
                            .body(ByteBuffer(bytes: body)),
                            .end(nil),
                        ])
                }
            case .websocket(let upgrade):
                if upgrade.legacy, let legacy = environment.legacy {
                    await LegacySession(
                        environment: environment, broadcaster: legacy.broadcaster, metrics: legacy.metrics,
                        logger: logger
                    ).run(upgrade.connection, inbox: upgrade.inbox)
                    // the session ends when the peer closed, the channel closed, or the task was cancelled
                    value.channel.close(promise: nil)
                } else {
                    // runs whenever the connection has work, closes the channel when it ends
                    WebSocketSession(connection: upgrade.connection, inbox: upgrade.inbox, runner: sessions).start()
                }
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["error.message": "\(error)"])
        }
    }

    static func path(of uri: String) -> Substring {
        uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }
}
