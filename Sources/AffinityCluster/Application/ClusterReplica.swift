import AffinityPeer
import AffinityRedis
public import AffinityServer
public import Logging
public import NIOPosix
public import ServiceLifecycle

/// One replica of a cluster: every service it runs, in start order.
///
/// Redis client and TLS credentials first, then the peer pool and server, the registry, the route write-back
/// and the application last (so it stops first: the drain tells clients to reconnect elsewhere while Redis
/// and the peer channel still work; then the registry deregisters).
///
/// ```swift
/// let replica = try buildClusterReplica(configuration: configuration, cluster: cluster,
///                                       eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger,
///                                       metrics: export)
/// try await ServiceGroup(configuration: .init(services: replica.services,
///                                             gracefulShutdownSignals: [.sigterm], logger: logger)).run()
/// ```
public struct ClusterReplica: Sendable {
    /// The services in start order.
    public let services: [any Service]
    /// The application (HTTP/WebSocket, drain).
    public let application: AffinityApplication
}

/// Builds a cluster replica: a ``RedisOutcomeStore``, the peer pool as the forwarder (its directory is the
/// registry's ``RedisReplicaRecords``), the peer server (its handler
/// is the replica's `DeliveryCoordinator`) and the ``ReplicaRegistry`` (the store's reconnections are handled by the
/// server's `RouteRefresher`).
///
/// Every part runs on `eventLoopGroup` (`affinity-server` passes NIO's singleton group, which it sizes): the
/// Redis connections, the peer server and client connections, the WebSocket server, and their timers.
///
/// - Throws: ``AffinityError`` for unreadable token files; `PeerTLSError` for unusable TLS files.
public func buildClusterReplica(
    configuration: AffinityConfiguration,
    cluster: ClusterConfiguration,
    eventLoopGroup: MultiThreadedEventLoopGroup,
    logger: Logger,
    metrics: MetricsExport,
    onListening: @escaping @Sendable (ListeningPorts) async -> Void = { _ in }
) throws -> ClusterReplica {
    var configuration = configuration
    configuration.routeRefreshInterval = max(cluster.routeTTL / 3, .milliseconds(100))
    let redis = RedisClient(configuration: cluster.redis, eventLoopGroup: eventLoopGroup, logger: logger)
    let keys = RedisKeySchema(prefix: cluster.keyPrefix)
    let records = RedisReplicaRecords(client: redis, keys: keys, logger: logger)
    let store = RedisOutcomeStore(
        client: redis, keys: keys, replication: cluster.replication, routeTTL: cluster.routeTTL,
        parkTTL: configuration.parkTTL,
        maxParkedPerKey: configuration.maxParkedPerKey, maxParkedBytesPerKey: configuration.maxParkedBytesPerKey,
        logger: logger)
    let credentials = try PeerTLSCredentials(
        files: cluster.tlsFiles, logger: logger, metricsFactory: metrics.factory)
    let pool = PeerConnectionPool(
        configuration: PeerClientConfiguration(
            replicaID: configuration.replicaID, expectedServerName: cluster.expectedServerName,
            // the owner waits up to the ack timeout for its client, then parks
            defaultTimeout: configuration.ackTimeout + .seconds(5),
            maxRequestBytes: configuration.maxMessageBytes + 64 * 1024),
        credentials: credentials, directory: records, logger: logger, metricsFactory: metrics.factory,
        eventLoopGroup: eventLoopGroup,
        lateDelivered: { outcome in
            // the peer's client acknowledged an outcome this replica parked when the forward's deadline passed
            Task { await store.rememberAcknowledged([(key: outcome.key, id: outcome.id)], logger: logger) }
        })
    let legacyDirectory =
        configuration.legacyProtocol
        ? LegacyReplicaDirectory(
            client: redis, prefix: cluster.keyPrefix, replicaID: configuration.replicaID, peers: pool,
            metricsFactory: metrics.factory, logger: logger) : nil
    let application = try buildApplication(
        configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger, metrics: metrics, store: store,
        forwarder: pool,
        legacyPeers: legacyDirectory, onListening: onListening)
    legacyDirectory?.bind(to: application.localReplica)
    // the replica is not ready until it holds its id in the registry
    application.localReplica.setRegistered(false)
    let instanceID = PeerServerConfiguration.randomInstanceID()
    let peerServer = try PeerServer(
        configuration: PeerServerConfiguration(
            host: configuration.host, port: cluster.peerPort, replicaID: configuration.replicaID,
            instanceID: instanceID,
            maxRequestBytes: configuration.maxMessageBytes + 64 * 1024),
        credentials: credentials,
        handler: application.deliveryCoordinator,
        logger: logger, metricsFactory: metrics.factory, eventLoopGroup: eventLoopGroup)
    let localReplica = application.localReplica
    let registry = ReplicaRegistry(
        records: records, replicaID: configuration.replicaID, peerAddress: cluster.advertiseAddress,
        ttl: cluster.registrationTTL, instanceNonce: instanceID,
        identify: { address in try? await pool.identify(address, timeout: .seconds(2)) },
        onRegistered: { localReplica.setRegistered(true) }, logger: logger)
    let services: [any Service] =
        [redis, credentials, pool, peerServer, registry] + (legacyDirectory.map { [$0] } ?? [])
        + [application]
    return ClusterReplica(services: services, application: application)
}
