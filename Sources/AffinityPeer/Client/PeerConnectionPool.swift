public import AffinityProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// One long-lived HTTP/2 connection (a gRPC client) per peer address, over mutual TLS.
///
/// A forward names a replica; the pool finds its address in its ``PeerDirectory`` (the cluster's registry)
/// and keeps it for a short time, so a burst of forwards to one replica costs one lookup. A peer's client is
/// created lazily by the first forward to it and reused by every later one; concurrent forwards share the
/// connection as HTTP/2 streams. When the peer restarts, the client reconnects by itself (with back-off).
/// When the directory no longer lists a replica, or lists it at another address (a pod restarted with a new
/// IP), the pool closes the old address's connection once no replica uses that address. After a TLS
/// reload (``PeerTLSCredentials/generation`` changed) the next forward opens a new connection with the new
/// material and the old one is closed gracefully once its in-flight forwards finish.
///
/// Run it as a `Service`: the clients' connections live in its task group; graceful shutdown closes them
/// after their in-flight forwards.
///
/// ```swift
/// let pool = PeerConnectionPool(
///     configuration: PeerClientConfiguration(replicaID: "replica-3"),
///     credentials: credentials,
///     directory: replicaRecords, // a PeerDirectory: where replica ids resolve to addresses
///     logger: logger
/// )
/// // in a ServiceGroup with `credentials` and `pool`:
/// let status = try await pool.deliver(outcome, toReplica: "replica-1")
/// ```
public final class PeerConnectionPool: Service, Sendable {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    /// What ``run()`` runs in its task group.
    private enum Job: Sendable {
        /// A peer's connection (the gRPC client), until it is shut down.
        case connection(PeerLink)
        /// One `DeliverStream` on a peer's connection, until it ends.
        case stream(PeerLink)
    }

    /// The configuration the pool was created with.
    public let configuration: PeerClientConfiguration
    private let credentials: PeerTLSCredentials
    private let logger: Logger
    private let metrics: PeerMetrics
    private let openedConnections: PeerConnectionCounter
    private let table: Mutex<PeerConnectionTable<PeerLink>>
    private let jobs: AsyncStream<Job>
    private let eventLoopGroup: any EventLoopGroup
    private let jobsContinuation: AsyncStream<Job>.Continuation
    private let lateDelivered: @Sendable (PeerDeliveredOutcome) -> Void
    private let directory: (any PeerDirectory)?
    private let addresses: Mutex<PeerAddressCache>

    /// Creates an empty pool.
    ///
    /// - Parameters:
    ///   - configuration: Deadlines, limits and the optional expected server name.
    ///   - credentials: The replica's TLS material, shared with its ``PeerServer``.
    ///   - directory: Where ``deliver(_:toReplica:timeout:legacyBroadcast:)`` finds a replica's address; `nil`
    ///     when the caller only forwards to addresses.
    ///   - addressLifetime: How long an address found in the directory is used without asking again.
    ///   - logger: The logger.
    ///   - metricsFactory: Where metrics go (default: the bootstrapped factory).
    ///   - eventLoopGroup: The event loops of the peers' connections and of the forwards' deadline timers
    ///     (default: the process's NIO singleton, which `affinity-server` sizes and shares).
    ///   - lateDelivered: Gets each outcome a peer answered `delivered` after its forward's deadline had
    ///     passed (the caller parked it meanwhile while the route named that peer; the replica makes the store
    ///     remember it as acknowledged).
    public init(
        configuration: PeerClientConfiguration,
        credentials: PeerTLSCredentials,
        directory: (any PeerDirectory)? = nil,
        addressLifetime: Duration = .seconds(2),
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        lateDelivered: @escaping @Sendable (PeerDeliveredOutcome) -> Void = { _ in }
    ) {
        self.eventLoopGroup = eventLoopGroup
        self.lateDelivered = lateDelivered
        self.directory = directory
        self.addresses = Mutex(PeerAddressCache(lifetime: addressLifetime))
        self.configuration = configuration
        self.credentials = credentials
        self.logger = logger
        self.metrics = PeerMetrics(factory: metricsFactory)
        self.openedConnections = PeerConnectionCounter()
        self.table = Mutex(PeerConnectionTable())
        (self.jobs, self.jobsContinuation) = AsyncStream.makeStream(of: Job.self)
    }

    /// How many TCP connections the pool has opened (including reconnects and failed handshakes).
    public var openedConnectionCount: Int {
        self.openedConnections.value
    }

    /// The peers that currently have a client in the pool.
    public var connectedPeers: Set<PeerAddress> {
        self.table.withLock { $0.addresses }
    }

    /// Runs the peers' connections until graceful shutdown, then closes them once in-flight forwards end.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await job in self.jobs {
                    switch job {
                    case .connection(let link):
                        group.addTask {
                            do {
                                try await link.client.runConnections()
                            } catch {
                                self.logger.debug(
                                    "peer client stopped with an error", metadata: ["error.message": "\(error)"])
                            }
                            self.forget(link)
                        }
                    case .stream(let link):
                        group.addTask { await link.stream.run(on: link.client) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.shutDown()
        }
    }

    /// Closes the connection to a peer that left (its replica deregistered, or registered another address);
    /// forwards in flight to it finish first. The next forward to the same address opens a new connection.
    func removePeer(_ address: PeerAddress) {
        let removed = self.table.withLock { $0.remove(address) }
        if let removed {
            self.logger.debug("peer connection closed", metadata: ["affinity.peer.address": "\(address)"])
            removed.close()
        }
    }

    /// Forwards an outcome to replica `replicaID`, at the address its ``PeerDirectory`` lists, and returns what
    /// it did with it.
    ///
    /// - Parameters:
    ///   - outcome: The outcome.
    ///   - replicaID: The replica the key's route names.
    ///   - timeout: How long to wait for the answer (default: the configured timeout).
    ///   - legacyBroadcast: For the replica's legacy-protocol clients only (the Node package's broadcast).
    /// - Throws: ``PeerDeliveryError``: `unresolved` when the replica is not registered or the directory
    ///   cannot be read, else as ``deliver(_:to:deadline:legacyBroadcast:)`` (the timeout starts once the address
    ///   is known).
    public func deliver(
        _ outcome: Outcome,
        toReplica replicaID: String,
        timeout: Duration? = nil,
        legacyBroadcast: Bool = false
    ) async throws(PeerDeliveryError) -> ForwardedDeliveryStatus {
        let address = try await self.address(ofReplica: replicaID)
        do {
            return try await self.deliver(outcome, to: address, timeout: timeout, legacyBroadcast: legacyBroadcast)
        } catch {
            switch error.code {
            case .unreachable, .refused, .tls:
                // the replica may have moved or died: ask the directory again next time
                self.addresses.withLock { $0.forget(replicaID) }
            case .unresolved, .deadlineExceeded, .rejected, .failed, .shutDown:
                break
            }
            throw error
        }
    }

    /// Forwards an outcome to the replica at `address` and returns what it did with it.
    ///
    /// - Parameters:
    ///   - outcome: The outcome.
    ///   - address: The peer's advertised address.
    ///   - deadline: When to give up waiting for the answer.
    ///   - legacyBroadcast: For the peer's legacy-protocol clients only (the Node package's broadcast): the
    ///     peer hands it to ``PeerDeliveryHandler/deliverToLegacyClients(_:from:)`` and answers `delivered`.
    /// - Throws: ``PeerDeliveryError`` classifying the failure.
    public func deliver(
        _ outcome: Outcome,
        to address: PeerAddress,
        deadline: ContinuousClock.Instant,
        legacyBroadcast: Bool = false
    ) async throws(PeerDeliveryError) -> ForwardedDeliveryStatus {
        let start = ContinuousClock.now
        let result: Result<ForwardedDeliveryStatus, PeerDeliveryError>
        do {
            result = .success(
                try await self.forward(outcome, legacyBroadcast: legacyBroadcast, to: address, deadline: deadline))
        } catch {
            result = .failure(error)
        }
        let duration = ContinuousClock.now - start
        switch result {
        case .success(let status):
            self.metrics.recordForward(result: status.metricName, duration: duration)
            self.logger.trace(
                "outcome forwarded",
                metadata: [
                    "affinity.key": "\(outcome.key)", "affinity.outcome": "\(outcome.id)",
                    "affinity.peer.address": "\(address)", "affinity.peer.status": "\(status.metricName)",
                ]
            )
            return status
        case .failure(let error):
            self.metrics.recordForward(result: error.code.rawValue, duration: duration)
            self.logger.debug(
                "outcome forward failed",
                metadata: [
                    "affinity.key": "\(outcome.key)", "affinity.outcome": "\(outcome.id)",
                    "affinity.peer.address": "\(address)", "error.code": "\(error.code.rawValue)",
                    "error.message": "\(error.message)",
                ]
            )
            throw error
        }
    }

    /// Forwards an outcome with a timeout instead of a deadline (default: the configured timeout).
    public func deliver(
        _ outcome: Outcome,
        to address: PeerAddress,
        timeout: Duration? = nil,
        legacyBroadcast: Bool = false
    ) async throws(PeerDeliveryError) -> ForwardedDeliveryStatus {
        try await self.deliver(
            outcome, to: address, deadline: .now + (timeout ?? self.configuration.defaultTimeout),
            legacyBroadcast: legacyBroadcast)
    }

    /// Asks the peer at `address` who it is: its replica id and the instance id of its process.
    public func identify(
        _ address: PeerAddress, timeout: Duration? = nil
    ) async throws(PeerDeliveryError) -> PeerIdentity {
        let client = try self.link(for: address).client
        var request = Affinity_Peer_V1_PingRequest()
        request.originReplica = self.configuration.replicaID
        var options = CallOptions.defaults
        options.timeout = timeout ?? self.configuration.defaultTimeout
        options.waitForReady = false
        do {
            let response = try await Affinity_Peer_V1_PeerDelivery.Client(wrapping: client).ping(
                request, options: options)
            return PeerIdentity(replicaID: response.replica, instanceID: response.instance)
        } catch {
            throw PeerDeliveryError.classifying(error, address: address)
        }
    }

    /// The address of `replicaID`: cached, else from the directory. A replica the directory no longer lists,
    /// or lists elsewhere, has its old address's connection closed (unless another replica uses that address).
    private func address(ofReplica replicaID: String) async throws(PeerDeliveryError) -> PeerAddress {
        if let cached = self.addresses.withLock({ $0.address(of: replicaID, at: .now) }) { return cached }
        let start = ContinuousClock.now
        guard let directory = self.directory else {
            throw self.unresolved(
                PeerDeliveryError(code: .unresolved, message: "the pool has no directory to find \(replicaID) in"),
                since: start)
        }
        let found: PeerAddress?
        do {
            found = try await directory.address(ofReplica: replicaID)
        } catch {
            throw self.unresolved(
                PeerDeliveryError(code: .unresolved, message: "cannot look up replica \(replicaID)", cause: error),
                since: start)
        }
        guard let found else {
            if let gone = self.addresses.withLock({ $0.unregistered(replicaID) }) { self.removePeer(gone) }
            throw self.unresolved(
                PeerDeliveryError(code: .unresolved, message: "replica \(replicaID) is not registered (gone?)"),
                since: start)
        }
        if let moved = self.addresses.withLock({ $0.store(found, for: replicaID, at: .now) }) { self.removePeer(moved) }
        return found
    }

    private func unresolved(_ error: PeerDeliveryError, since start: ContinuousClock.Instant) -> PeerDeliveryError {
        self.metrics.recordForward(result: error.code.rawValue, duration: .now - start)
        self.logger.debug(
            "peer address not found", metadata: ["error.code": "\(error.code.rawValue)", "error.message": "\(error)"])
        return error
    }

    private func forward(
        _ outcome: Outcome,
        legacyBroadcast: Bool,
        to address: PeerAddress,
        deadline: ContinuousClock.Instant
    ) async throws(PeerDeliveryError) -> ForwardedDeliveryStatus {
        let remaining = deadline - .now
        guard remaining > .zero else {
            throw PeerDeliveryError(
                code: .deadlineExceeded, message: "the deadline passed before the forward to \(address)")
        }
        // The message's size, up to a few bytes of protobuf framing; checked here because the server answers
        // an oversized message by resetting the stream, which the caller could not tell from a crash.
        let key = outcome.key.description
        let size =
            outcome.variables.count + outcome.id.utf8.count + key.utf8.count
            + self.configuration.replicaID.utf8.count + 32
        guard size <= self.configuration.maxRequestBytes else {
            throw PeerDeliveryError(
                code: .rejected,
                message:
                    "the outcome (\(size) bytes) exceeds the peer message limit of \(self.configuration.maxRequestBytes) bytes"
            )
        }
        var request = Affinity_Peer_V1_DeliverRequest()
        request.id = outcome.id
        request.key = key
        request.variables = Data(outcome.variables)
        request.originReplica = self.configuration.replicaID
        request.legacyBroadcast = legacyBroadcast
        // A connection retired between the lookup and the send (a TLS reload renewed it, or the pool shuts
        // down) refuses the request before sending it; the second lookup finds its successor.
        for _ in 0..<2 {
            let link = try self.link(for: address)
            switch try await link.stream.send(request, deadline: deadline, startStream: { self.startStream(on: link) })
            {
            case .response(let response):
                return try PeerDeliveryError.status(of: response, address: address)
            case .connectionRetired:
                continue
            }
        }
        throw PeerDeliveryError(code: .unreachable, message: "the connection to \(address) closed before the forward")
    }

    /// Hands a peer's stream to ``run()``; fails its requests when the pool no longer runs anything.
    private func startStream(on link: PeerLink) {
        if case .terminated = self.jobsContinuation.yield(.stream(link)) {
            link.stream.fail(PeerDeliveryError(code: .shutDown, message: "the peer connection pool is shut down"))
        }
    }

    /// The peer's connection, created (and handed to ``run()``) on first use or after a TLS reload.
    private func link(for address: PeerAddress) throws(PeerDeliveryError) -> PeerLink {
        let generation = self.credentials.generation
        let lookup: PeerConnectionTable<PeerLink>.Lookup
        do {
            lookup = try self.table.withLock { table in
                try table.connection(for: address, generation: generation) {
                    PeerLink(
                        client: try self.makeClient(for: address),
                        stream: PeerDeliveryStream(
                            address: address, timers: self.eventLoopGroup, logger: self.logger, metrics: self.metrics,
                            lateDelivered: self.lateDelivered)
                    )
                }
            }
        } catch {
            throw PeerDeliveryError(code: .tls, message: "cannot configure TLS for \(address)", cause: error)
        }
        switch lookup {
        case .existing(let link):
            return link
        case .created(let link, let replaced):
            self.jobsContinuation.yield(.connection(link))
            if let replaced {
                self.logger.debug(
                    "peer connection renewed after a TLS reload",
                    metadata: ["affinity.peer.address": "\(address)", "affinity.peer.tls.generation": "\(generation)"]
                )
                replaced.close()
            }
            return link
        case .shutDown:
            throw PeerDeliveryError(code: .shutDown, message: "the peer connection pool is shut down")
        }
    }

    private func makeClient(for address: PeerAddress) throws -> Client {
        let configuration = self.configuration
        let credentials = self.credentials
        let metrics = self.metrics
        let logger = self.logger
        let opened = self.openedConnections
        let security = try HTTP2ClientTransport.Posix.TransportSecurity.mTLS(certificateReloader: credentials) { tls in
            // Chain verification against the current cluster CA (and the server name, when configured) is
            // done by the custom callback; BoringSSL's own hostname check is off because peers are dialled
            // by pod IP, which their certificates do not name.
            tls.serverCertificateVerification = .noHostnameVerification
            tls.trustRoots = .certificates([.bytes(credentials.trustRootsPEM, format: .pem)])
            tls.customVerificationCallback = credentials.verificationCallback(
                peerRole: .server,
                expectedServerName: configuration.expectedServerName
            )
        }
        let transportConfig = HTTP2ClientTransport.Posix.Config.defaults { config in
            config.connection.maxIdleTime = configuration.maxConnectionIdleTime
            config.connection.keepalive = configuration.keepaliveInterval.map {
                HTTP2ClientTransport.Config.Keepalive(time: $0, timeout: .seconds(5), allowWithoutCalls: false)
            }
            config.backoff.initial = configuration.reconnectInitialBackoff
            config.backoff.max = configuration.reconnectMaximumBackoff
            config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
                opened.increment()
                metrics.connectionsOpened.increment()
                return channel.eventLoop.submit {
                    let tlsHandler = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
                    try channel.pipeline.syncOperations.addHandler(
                        PeerTLSHandshakeObserver(failures: metrics.clientHandshakeFailures, logger: logger),
                        position: .after(tlsHandler)
                    )
                }
            }
        }
        let target: any ResolvableTarget
        if address.host.contains(":") {
            target = .ipv6(address: address.host, port: address.port)
        } else if Self.isIPv4(address.host) {
            target = .ipv4(address: address.host, port: address.port)
        } else {
            target = .dns(host: address.host, port: address.port)
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: target,
            transportSecurity: security,
            config: transportConfig,
            eventLoopGroup: self.eventLoopGroup
        )
        return GRPCClient(transport: transport)
    }

    private static func isIPv4(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Drops a connection that stopped (shut down or failed), unless it was replaced already.
    private func forget(_ link: PeerLink) {
        self.table.withLock { $0.forget(link) }
    }

    private func shutDown() {
        let links = self.table.withLock { $0.shutDown() }
        self.jobsContinuation.finish()
        for link in links {
            link.close()
        }
    }
}
