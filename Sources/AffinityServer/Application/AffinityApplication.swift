public import AffinityProtocol
import CoreMetrics
import Hummingbird
import HummingbirdCore
public import Logging
public import NIOCore
public import ServiceLifecycle

/// One affinity-server replica as a `Service`: the HTTP/WebSocket server and the runner of its
/// WebSocket sessions, the optional metrics server, the parked-outcome sweeper and the drain
/// coordinator, run as one service group.
///
/// ```swift
/// let application = try buildApplication(
///     configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger,
///     metrics: metrics)
/// let group = ServiceGroup(configuration: .init(
///     services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
public struct AffinityApplication: Service {
    /// The replica's readiness and legacy clients, for the cluster layer.
    public let localReplica: LocalReplica
    /// The replica's deliveries: in a cluster, also the handler of outcomes other replicas forward here.
    package let deliveryCoordinator: DeliveryCoordinator
    private let services: [any Service]
    private let configuration: AffinityConfiguration
    private let logger: Logger

    fileprivate init(
        services: [any Service], localReplica: LocalReplica, deliveryCoordinator: DeliveryCoordinator,
        configuration: AffinityConfiguration, logger: Logger
    ) {
        self.services = services
        self.localReplica = localReplica
        self.deliveryCoordinator = deliveryCoordinator
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until graceful shutdown (then drains) or cancellation.
    public func run() async throws {
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.drainTimeout
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// Builds a replica on the embedded in-memory store (or on `store`, e.g. the Redis store).
///
/// - Parameters:
///   - configuration: the replica's settings.
///   - eventLoopGroup: the event loops of the HTTP/WebSocket servers, their connections and the ack timeouts'
///     timers (`affinity-server` passes NIO's singleton group, which it sizes).
///   - logger: the logger every component derives from.
///   - metrics: where metrics go and how `/metrics` renders them.
///   - store: the shared store; nil creates an ``InMemoryOutcomeStore`` (single replica).
///   - forwarder: forwards outcomes to other replicas (cluster mode); nil for a single replica.
///   - legacyPeers: the other replicas' legacy clients (cluster mode with `legacyProtocol`).
///   - onListening: called once every server is bound, with the actual ports.
/// - Throws: ``AffinityError`` when a token file cannot be read or holds no token.
public func buildApplication(
    configuration: AffinityConfiguration,
    eventLoopGroup: any EventLoopGroup,
    logger: Logger,
    metrics metricsExport: MetricsExport,
    store: (any OutcomeStore)? = nil,
    forwarder: (any OutcomeForwarder)? = nil,
    legacyPeers: (any LegacyPeers)? = nil,
    onListening: @escaping @Sendable (ListeningPorts) async -> Void = { _ in }
) throws(AffinityError) -> AffinityApplication {
    let metrics = AffinityMetrics(factory: metricsExport.factory)
    var services: [any Service] = []
    let outcomeStore: any OutcomeStore
    if let store {
        outcomeStore = store
    } else {
        let memory = InMemoryOutcomeStore(
            parkTTL: configuration.parkTTL, maxParkedPerKey: configuration.maxParkedPerKey,
            maxParkedTotal: configuration.maxParkedTotal, maxParkedBytesPerKey: configuration.maxParkedBytesPerKey,
            maxParkedBytes: configuration.maxParkedBytes,
            onExpired: { metrics.outcomesExpired.increment(by: Int64($0)) })
        outcomeStore = memory
        let interval = min(max(configuration.parkTTL / 10, .milliseconds(50)), .seconds(5))
        services.append(ParkedOutcomeSweeper(store: memory, interval: interval, logger: logger))
    }
    let policy = AccessPolicy(
        clientTokens: try configuration.clientTokenFile.map { path throws(AffinityError) in try TokenFile(path: path) },
        workerTokens: try configuration.workerTokenFile.map { path throws(AffinityError) in try TokenFile(path: path) })
    for role in policy.openRoles.sorted(by: { $0.rawValue < $1.rawValue }) {
        logger.warning(
            "no token file for this role: anyone may connect as it",
            metadata: ["affinity.role": "\(role.rawValue)"])
    }
    let drainSignal = DrainSignal()
    let registry = ConnectionRegistry(metrics: metrics, drainSignal: drainSignal)
    var legacy: (broadcaster: LegacyBroadcaster, metrics: LegacyMetrics)?
    if configuration.legacyProtocol {
        logger.warning(
            "the legacy protocol of the Node package is served on / WITHOUT authentication: keep that path reachable only inside the cluster network"
        )
        let legacyMetrics = LegacyMetrics(factory: metricsExport.factory)
        legacy = (LegacyBroadcaster(peers: legacyPeers, metrics: legacyMetrics, logger: logger), legacyMetrics)
    }
    let coordinator = DeliveryCoordinator(
        store: outcomeStore, forwarder: forwarder, registry: registry, replicaID: configuration.replicaID,
        ackTimeouts: AckTimeouts(timeout: configuration.ackTimeout, eventLoop: eventLoopGroup.any()), metrics: metrics,
        logger: logger, legacy: legacy?.broadcaster,
        drainSignal: drainSignal)
    let readiness = Readiness()
    let environment = SessionEnvironment(
        configuration: configuration, registry: registry, coordinator: coordinator, metrics: metrics,
        readiness: readiness, connectionSlots: ConnectionSlots(limit: configuration.maxConnections), legacy: legacy)
    let routes = AffinityRoutes(
        environment: environment, accessPolicy: policy, metricsExport: metricsExport, logger: logger)

    let ports = PortCollector(expected: configuration.metricsPort == nil ? 1 : 2, onListening: onListening)
    let mainResponder = routes.mainRouter().buildResponder()
    // started before the HTTP server, so that it stops after the server closed every connection
    let sessions = SessionRunner(environment: environment, logger: logger)
    services.append(sessions)
    let server = HTTPServerBuilder { responder in
        AffinityServerChannel(
            responder: responder,
            environment: environment,
            sessions: sessions,
            admit: { authorization in
                guard !environment.isDraining() else {
                    return .failure(
                        AffinityError(code: .unavailable, message: "this replica is draining; connect to another one"))
                }
                return Result { () throws(AffinityError) in try policy.grantedRoles(authorization: authorization) }
            }
        )
    }
    let main = Application(
        responder: mainResponder,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in await ports.report(main: channel.localAddress?.port ?? 0) },
        eventLoopGroupProvider: .shared(eventLoopGroup),
        logger: logger
    )
    services.append(main)
    if let metricsPort = configuration.metricsPort {
        services.append(
            Application(
                router: routes.metricsRouter(),
                configuration: .init(address: .hostname(configuration.host, port: metricsPort)),
                onServerRunning: { channel in await ports.report(metrics: channel.localAddress?.port ?? 0) },
                eventLoopGroupProvider: .shared(eventLoopGroup),
                logger: logger
            ))
    }
    if let store {
        services.append(
            RouteRefresher(
                coordinator: coordinator, store: store, interval: configuration.routeRefreshInterval, logger: logger))
    }
    services.append(DrainCoordinator(environment: environment, logger: logger))
    return AffinityApplication(
        services: services,
        localReplica: LocalReplica(coordinator: coordinator, readiness: readiness, replicaID: configuration.replicaID),
        deliveryCoordinator: coordinator, configuration: configuration, logger: logger)
}

/// Calls `onListening` once every server reported its port.
private actor PortCollector {
    private var main: Int?
    private var metrics: Int?
    private let expected: Int
    private let onListening: @Sendable (ListeningPorts) async -> Void

    init(expected: Int, onListening: @escaping @Sendable (ListeningPorts) async -> Void) {
        self.expected = expected
        self.onListening = onListening
    }

    func report(main port: Int) async {
        main = port
        await fireIfComplete()
    }

    func report(metrics port: Int) async {
        metrics = port
        await fireIfComplete()
    }

    private func fireIfComplete() async {
        guard let main else { return }
        if expected == 2 && metrics == nil { return }
        await onListening(ListeningPorts(main: main, metrics: metrics))
    }
}
