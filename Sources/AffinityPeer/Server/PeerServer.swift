import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import Metrics
import NIOCore
public import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Serves the peer channel (`PeerDelivery`) on its own port with mutual TLS.
///
/// Every caller must present a certificate that chains to the cluster CA in ``PeerTLSCredentials`` (current
/// at handshake time); callers without a certificate or with any other certificate fail the TLS handshake.
/// The server presents the replica's current certificate. Requests are validated and passed to the
/// ``PeerDeliveryHandler``; requests above ``PeerServerConfiguration/maxRequestBytes`` are refused.
///
/// Run it as a `Service`: graceful shutdown stops accepting connections and lets in-flight deliveries finish.
///
/// ```swift
/// let server = try PeerServer(
///     configuration: PeerServerConfiguration(port: 9443, replicaID: "replica-1"),
///     credentials: credentials,
///     handler: application.deliveryCoordinator, // a PeerDeliveryHandler
///     logger: logger
/// )
/// let group = ServiceGroup(services: [credentials, server], logger: logger)
/// ```
public final class PeerServer: Service, Sendable {
    /// The configuration the server was created with.
    public let configuration: PeerServerConfiguration
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let logger: Logger
    private let acceptedConnections: PeerConnectionCounter
    private let shutdownNotices: PeerStreamShutdownNotices

    /// Creates the server; it listens once ``run()`` starts.
    ///
    /// - Parameters:
    ///   - configuration: Address, replica id and limits.
    ///   - credentials: The replica's TLS material (also run it as a service to reload it).
    ///   - handler: What to do with forwarded outcomes.
    ///   - logger: The logger (dotted metadata keys; per-request logs at trace).
    ///   - metricsFactory: Where metrics go (default: the bootstrapped factory).
    ///   - eventLoopGroup: The event loops of the listener, its connections and the stream request timers
    ///     (default: the process's NIO singleton, which `affinity-server` sizes and shares).
    public init(
        configuration: PeerServerConfiguration,
        credentials: PeerTLSCredentials,
        handler: any PeerDeliveryHandler,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        eventLoopGroup: MultiThreadedEventLoopGroup = .singleton
    ) throws {
        self.configuration = configuration
        self.logger = logger
        let acceptedConnections = PeerConnectionCounter()
        self.acceptedConnections = acceptedConnections
        let metrics = PeerMetrics(factory: metricsFactory)

        let security = try HTTP2ServerTransport.Posix.TransportSecurity.mTLS(certificateReloader: credentials) { tls in
            // Require a client certificate; the chain is checked by the custom callback against the trust
            // roots current at handshake time. The static roots below only name the CA in the certificate
            // request (they are never the system roots).
            tls.clientCertificateVerification = .noHostnameVerification
            tls.trustRoots = .certificates([.bytes(credentials.trustRootsPEM, format: .pem)])
            tls.customVerificationCallback = credentials.verificationCallback(
                peerRole: .client,
                expectedServerName: nil
            )
            tls.requireALPN = true
        }
        let transportConfig = HTTP2ServerTransport.Posix.Config.defaults { config in
            config.rpc.maxRequestPayloadSize = configuration.maxRequestBytes
            config.connection.maxIdleTime = configuration.maxConnectionIdleTime
            // A caller's DeliverStream stays open, and the caller sends HTTP/2 keepalive pings every 10 s while
            // it is (to notice a dead peer); gRPC's default would count those as strikes (5 min minimum) and
            // close an idle connection after a few of them.
            config.connection.keepalive.clientBehavior = .init(
                minPingIntervalWithoutCalls: .seconds(5), allowWithoutCalls: false)
            config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                acceptedConnections.increment()
                metrics.connectionsAccepted.increment()
                return channel.eventLoop.submit {
                    let tlsHandler = try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                    try channel.pipeline.syncOperations.addHandler(
                        PeerTLSHandshakeObserver(failures: metrics.serverHandshakeFailures, logger: logger),
                        position: .after(tlsHandler)
                    )
                }
            }
        }
        let address: GRPCNIOTransportCore.SocketAddress =
            configuration.host.contains(":")
            ? .ipv6(host: configuration.host, port: configuration.port)
            : .ipv4(host: configuration.host, port: configuration.port)
        let transport = HTTP2ServerTransport.Posix(
            address: address,
            transportSecurity: security,
            config: transportConfig,
            eventLoopGroup: eventLoopGroup
        )
        let shutdownNotices = PeerStreamShutdownNotices()
        self.shutdownNotices = shutdownNotices
        let service = PeerDeliveryService(
            configuration: configuration,
            handler: handler,
            logger: logger,
            metrics: metrics,
            shutdownNotices: shutdownNotices,
            timers: eventLoopGroup
        )
        self.server = GRPCServer(transport: transport, services: [service])
    }

    /// How many TCP connections the server has accepted since it started (including refused handshakes).
    public var acceptedConnectionCount: Int {
        self.acceptedConnections.value
    }

    /// The port the server listens on, once it is bound (useful with port 0).
    ///
    /// - Throws: When the server failed to bind or has stopped.
    public func listeningPort() async throws -> Int {
        let address = try await self.server.transport.listeningAddress
        if let ipv4 = address.ipv4 { return ipv4.port }
        if let ipv6 = address.ipv6 { return ipv6.port }
        throw RPCError(code: .internalError, message: "the peer server is not bound to an IP address: \(address)")
    }

    /// Serves until graceful shutdown (then waits for in-flight deliveries) or cancellation.
    public func run() async throws {
        self.logger.info(
            "peer server starting",
            metadata: [
                "affinity.replica": "\(self.configuration.replicaID)",
                "affinity.peer.address": "\(self.configuration.host):\(self.configuration.port)",
            ]
        )
        try await withGracefulShutdownHandler {
            try await self.server.serve()
        } onGracefulShutdown: {
            self.logger.info("peer server shutting down gracefully")
            self.server.beginGracefulShutdown()
            // Open DeliverStreams tell their callers to finish; gRPC waits for them to end.
            self.shutdownNotices.shutDown()
        }
        self.logger.info("peer server stopped")
    }
}

/// Tells the server's open `DeliverStream`s that the server is shutting down, so that each sends its caller
/// the drain notice (an answer with request id 0 and no failure) and the callers finish their streams:
/// gRPC's graceful shutdown waits for open streams, and a caller keeps its stream open until told.
final class PeerStreamShutdownNotices: Sendable {
    private struct State {
        var shuttingDown = false
        var nextToken: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var ended: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Registers a stream; pass the token to ``waitForShutdown(_:)`` and ``streamEnded(_:)``.
    func register() -> UInt64 {
        self.state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
    }

    /// Waits until the server shuts down (`true`) or the stream ended (`false`).
    func waitForShutdown(_ token: UInt64) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let immediate = self.state.withLock { state -> Bool? in
                if state.ended.remove(token) != nil { return false }
                if state.shuttingDown { return true }
                state.waiters[token] = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// The stream `token` ended: its waiter returns `false`.
    func streamEnded(_ token: UInt64) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let waiter = state.waiters.removeValue(forKey: token) { return waiter }
            if !state.shuttingDown { state.ended.insert(token) }
            return nil
        }
        waiter?.resume(returning: false)
    }

    /// The server shuts down: every waiting stream returns `true`, and so do later ones.
    func shutDown() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.shuttingDown = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.resume(returning: true)
        }
    }
}
