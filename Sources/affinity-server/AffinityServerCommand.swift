import AffinityCluster
import AffinityProtocol
import AffinityRedis
import AffinityServer
import AffinitySettings
import ArgumentParser
import Logging
import Metrics
import NIOPosix
import Prometheus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `affinity-server`: one replica of the affinity service. Every option also reads an
/// `AFFINITY_*` environment variable; the flag wins.
struct AffinityServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "affinity-server",
        abstract: "Routes Zeebe process outcomes from job workers to the front-end waiting for them.",
        discussion:
            "Every option can also be set with the environment variable shown in its help. Secrets come only from files."
    )

    @Option(help: "Interface to listen on (env AFFINITY_HOST, default 0.0.0.0).") var host: String?
    @Option(help: "WebSocket + HTTP port (env AFFINITY_PORT, default 8080).") var port: String?
    @Option(
        help:
            "Serve /metrics on this port only, /health/* on both (env AFFINITY_METRICS_PORT, default: off: all on --port)."
    )
    var metricsPort: String?
    @Option(help: "This replica's id (env AFFINITY_REPLICA_ID, default: the host name).") var replicaId: String?
    @Option(
        help: "File of client tokens, one per line (env AFFINITY_CLIENT_TOKEN_FILE, default: clients unauthenticated).")
    var clientTokenFile: String?
    @Option(
        help: "File of worker tokens, one per line (env AFFINITY_WORKER_TOKEN_FILE, default: workers unauthenticated).")
    var workerTokenFile: String?
    @Option(help: "How long a parked outcome is kept (env AFFINITY_PARK_TTL, default 5m).") var parkTtl: String?
    @Option(
        help: "How long a delivery waits for a client's ack before parking (env AFFINITY_ACK_TIMEOUT, default 10s).")
    var ackTimeout: String?
    @Option(help: "Largest message or HTTP body in bytes (env AFFINITY_MAX_MESSAGE_BYTES, default 1048576).")
    var maxMessageBytes: String?
    @Option(help: "Subscriptions per connection (env AFFINITY_MAX_SUBSCRIPTIONS, default 1000).") var maxSubscriptions:
        String?
    @Option(
        help:
            "Outbound bytes queued per connection before it is closed as a slow consumer (env AFFINITY_MAX_OUTBOUND_BYTES, default 8388608)."
    )
    var maxOutboundBytes: String?
    @Option(
        help:
            "Outcomes one worker connection may have in flight (read, not answered yet); at the bound, its socket is not read until answers make room (env AFFINITY_MAX_OUTCOMES_IN_FLIGHT, default 1000)."
    )
    var maxOutcomesInFlight: String?
    @Option(
        help:
            "Bytes of outcomes one worker connection may have in flight; at the bound, its socket is not read until answers make room (env AFFINITY_MAX_IN_FLIGHT_BYTES, default 16777216)."
    )
    var maxInFlightBytes: String?
    @Option(
        help:
            "Bytes of parked outcomes the embedded store keeps in total; more are refused with too_large (env AFFINITY_MAX_PARKED_BYTES, default 134217728)."
    )
    var maxParkedBytes: String?
    @Option(
        help:
            "Bytes of parked outcomes kept per key, in either store; more are refused with too_large (env AFFINITY_MAX_PARKED_BYTES_PER_KEY, default 67108864)."
    )
    var maxParkedBytesPerKey: String?
    @Option(
        help:
            "WebSocket connections held at most; more upgrades get 503 (env AFFINITY_MAX_CONNECTIONS, default 10000)."
    )
    var maxConnections: String?
    @Option(
        help:
            "Time a new connection has to send its request head, and an HTTP keep-alive may idle, before it is closed (env AFFINITY_HANDSHAKE_TIMEOUT, default 10s)."
    )
    var handshakeTimeout: String?
    @Option(
        help: "WebSocket ping interval; a peer missing a pong is dropped (env AFFINITY_PING_INTERVAL, default 20s).")
    var pingInterval: String?
    @Option(help: "Upper bound for the graceful shutdown (env AFFINITY_DRAIN_TIMEOUT, default 25s).") var drainTimeout:
        String?
    @Option(help: "trace, debug, info, notice, warning, error or critical (env AFFINITY_LOG_LEVEL, default info).")
    var logLevel: String?
    @Option(help: "text or json (env AFFINITY_LOG_FORMAT, default text).") var logFormat: String?
    @Option(
        help:
            "Join a cluster through this Redis: redis://, rediss://, or redis-sentinel://h1:26379,h2:26379/0#master (rediss-sentinel:// with TLS) (env AFFINITY_REDIS_URL, default: embedded store, one replica)."
    )
    var redisUrl: String?
    @Option(help: "File holding the Redis password (env AFFINITY_REDIS_PASSWORD_FILE).") var redisPasswordFile: String?
    @Option(
        help:
            "File holding the password of the Redis sentinels, with a redis-sentinel:// URL (env AFFINITY_REDIS_SENTINEL_PASSWORD_FILE)."
    )
    var redisSentinelPasswordFile: String?
    @Option(
        help:
            "Redis replicas that must confirm a park or ack (WAIT) before it is answered; fewer answer unavailable (env AFFINITY_REDIS_WAIT_REPLICAS, default 1 with redis-sentinel:// or redis-cluster://, else 0)."
    )
    var redisWaitReplicas: String?
    @Option(
        help: "Longest wait for the replicas' confirmation (env AFFINITY_REDIS_WAIT_TIMEOUT, default 1s).")
    var redisWaitTimeout: String?
    @Option(help: "Prefix of every Redis key (env AFFINITY_REDIS_PREFIX, default affinity:).") var redisPrefix: String?
    @Option(help: "Lifetime of a route in Redis, refreshed every third of it (env AFFINITY_ROUTE_TTL, default 90s).")
    var routeTtl: String?
    @Option(help: "Peer channel port, mutual TLS (env AFFINITY_PEER_PORT, default 9443).") var peerPort: String?
    @Option(
        help:
            "host:port other replicas dial for this one (env AFFINITY_PEER_ADVERTISE_ADDRESS, default <host name>:<peer port>)."
    )
    var peerAdvertiseAddress: String?
    @Option(help: "Peer certificate chain, PEM (env AFFINITY_PEER_TLS_CERT; required with --redis-url).")
    var peerTlsCert: String?
    @Option(help: "Peer private key, PEM (env AFFINITY_PEER_TLS_KEY; required with --redis-url).") var peerTlsKey:
        String?
    @Option(help: "Cluster CA bundle, PEM (env AFFINITY_PEER_TLS_CA; required with --redis-url).") var peerTlsCa:
        String?
    @Option(
        help: "A DNS name every peer certificate must hold (env AFFINITY_PEER_TLS_SERVER_NAME, default: chain only).")
    var peerTlsServerName: String?
    @Option(
        help:
            "Event loop threads, which also run the replica's Swift tasks (env AFFINITY_EVENT_LOOP_THREADS, default: the CPUs available, CPU limits included)."
    )
    var eventLoopThreads: String?
    @Flag(
        help:
            "Accept the Node package's protocol (zeebe-node-affinity) on / WITHOUT authentication; keep / inside the cluster network (env AFFINITY_LEGACY_PROTOCOL=true)."
    )
    var legacyProtocol = false

    func run() async throws {
        try await run(eventLoops: EventLoopSetup.install(threads: try? resolveEventLoopThreads()))
    }

    /// Runs the replica on the event loops `eventLoops` describes (set up by ``AffinityServerEntry``).
    func run(eventLoops: EventLoopSetup.Result) async throws {
        let settings: (AffinityConfiguration, Logger.Level, Bool)
        let cluster: ClusterConfiguration?
        do {
            settings = try resolve()
            cluster = try resolveCluster(replicaID: settings.0.replicaID)
        } catch {
            Self.fail(error.message)
        }
        let (configuration, level, json) = settings
        let logger = {
            var logger = StandardErrorLogging.bootstrap(label: "affinity-server", level: level, json: json)
            logger[metadataKey: "affinity.replica"] = "\(configuration.replicaID)"
            return logger
        }()

        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        MetricsSystem.bootstrap(factory)
        let metrics = MetricsExport(factory: factory, render: { registry.emitToBuffer() })
        let onListening: @Sendable (ListeningPorts) async -> Void = { ports in
            logger.info(
                "listening",
                metadata: [
                    "affinity.host": "\(configuration.host)", "affinity.port": "\(ports.main)",
                    "affinity.metrics_port": "\(ports.metrics.map(String.init) ?? "-")",
                ])
        }
        logger.info(
            "event loops",
            metadata: [
                "affinity.event_loop_threads": "\(eventLoops.threads)",
                "affinity.tasks_on_event_loops": "\(eventLoops.tasksOnEventLoops)",
            ])
        let services: [any Service]
        if let cluster {
            do {
                services = try buildClusterReplica(
                    configuration: configuration, cluster: cluster,
                    eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                    logger: logger, metrics: metrics, onListening: onListening
                ).services
            } catch let error as AffinityError {
                Self.fail(error.message)
            } catch {
                Self.fail("\(error)")
            }
            logger.info(
                "cluster mode",
                metadata: [
                    "redis.endpoint": "\(cluster.redis.endpoint)", "affinity.peer.port": "\(cluster.peerPort)",
                    "affinity.peer.advertise": "\(cluster.advertiseAddress)",
                ])
        } else {
            do {
                services = [
                    try buildApplication(
                        configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                        logger: logger, metrics: metrics, onListening: onListening)
                ]
            } catch {
                Self.fail(error.message)
            }
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.drainTimeout + .seconds(2)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("stopped")
    }

    /// Prints one line to standard error and exits with status 2.
    static func fail(_ message: String) -> Never {
        StandardError.write("affinity-server: \(message)\n")
        Glibc.exit(2)
    }
}
