import EventLoopTimers
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A pipelined, non-blocking, reconnecting Redis client on hiredis's reply reader and command formatter,
/// running in a SwiftNIO channel.
///
/// The client is a `Service`: ``run()`` owns the connection (connects, authenticates, selects the database,
/// reconnects with exponential back-off and jitter) until the task is cancelled or a graceful shutdown begins.
/// Commands sent while no connection is ready fail at once with ``RedisError/Code/connection``; a command
/// that misses its deadline fails with ``RedisError/Code/timeout`` and the connection is recycled.
///
/// The client knows the topology (``RedisConfiguration/topology``) so that its callers do not: with Sentinel
/// it asks the sentinels for the master, checks it with `ROLE` and follows failovers (`+switch-master`,
/// `READONLY`, a lost connection); with Redis Cluster it keeps the slot map (`CLUSTER SHARDS`) and one
/// pipelined connection per master, routes each command by the slot of its first key and follows `MOVED` and
/// `ASK`. Every new connection (with a cluster: every time the whole cluster is usable again) is reported as
/// `.connected`, after which callers write back what Redis may have lost.
///
/// ```swift
/// let client = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:6379/0"), logger: logger)
/// let group = ServiceGroup(services: [client, ...], logger: logger)   // or run it in a task group
/// let events = client.connectionEvents()
/// for await event in events { if case .connected = event { break } }
/// let reply = try await client.send(["SET", "greeting", "hello"])
/// ```
public final class RedisClient: Service, Sendable {
    struct State: ~Copyable {
        var connection: RedisConnection?
        var generation = 0
        var stopping = false
        var finished = false
        var listeners: [Int: AsyncStream<RedisConnectionEvent>.Continuation] = [:]
        var nextListenerID = 0
        var scriptHashes: [String: String] = [:]
        /// With Sentinel: the sentinels in the order to ask them (the last one that answered first).
        var sentinelOrder: [RedisEndpoint] = []
        /// With Redis Cluster: the slot map and the connections to the masters.
        var cluster = RedisClusterConnections()
        /// The connections confirmed writes (a write and its `WAIT`) run on, next to the data connections.
        var confirmations = RedisConfirmationConnections()
        /// The TLS context of every connection (set by ``run()``).
        var sslContext: NIOSSLContext?
    }

    /// The configuration in use.
    public let configuration: RedisConfiguration
    let state = Mutex(State())
    let eventLoopGroup: any EventLoopGroup
    /// The reconnect back-off's sleep; ``stop()`` ends it.
    let backoffSleeper: EventLoopSleeper
    let logger: Logger
    let commandCounter = Counter(label: "affinity.redis.commands")
    let connectCounter = Counter(label: "affinity.redis.connections")
    let failoverCounter = Counter(label: "affinity.redis.failovers")

    /// Creates a client; nothing happens until ``run()``.
    ///
    /// - Parameters:
    ///   - configuration: The server, topology, credentials, TLS and timeouts.
    ///   - eventLoopGroup: The event loops of the connections, their deadlines and the reconnect back-off
    ///     (default: the process's NIO singleton; `affinity-server` passes the group it sizes explicitly).
    ///   - logger: The logger (`redis.endpoint` is added to its metadata).
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.backoffSleeper = EventLoopSleeper(eventLoop: eventLoopGroup.any())
        var logger = logger
        logger[metadataKey: "redis.endpoint"] = "\(configuration.endpoint)"
        self.logger = logger
        if case .sentinel(let settings) = configuration.topology {
            state.withLock { $0.sentinelOrder = settings.sentinels }
        }
    }

    /// Owns the connection until cancelled or until a graceful shutdown: connects, then reconnects with
    /// back-off whenever the connection is lost. On graceful shutdown the commands in flight are answered
    /// before the connection closes. Throws at once for invalid settings (unreadable TLS or password files, an
    /// ACL user without a password); connection failures are retried, not thrown.
    public func run() async throws {
        let sslContext = try makeSSLContext()
        state.withLock { $0.sslContext = sslContext }
        _ = try handshake()
        switch configuration.topology {
        case .standalone:
            break
        case .sentinel(let settings):
            _ = try sentinelHandshake(settings)
        case .cluster(let seeds):
            guard !seeds.isEmpty else {
                throw RedisError(code: .configuration, message: "a Redis Cluster needs at least one seed node")
            }
        }
        defer { finish() }
        await withTaskCancellationOrGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if case .sentinel(let settings) = configuration.topology {
                    group.addTask { await self.followFailovers(settings, sslContext: sslContext) }
                }
                if case .cluster(let seeds) = configuration.topology {
                    await maintainCluster(seeds: seeds, sslContext: sslContext)
                } else {
                    await maintainConnection(sslContext: sslContext)
                }
                group.cancelAll()
            }
        } onCancelOrGracefulShutdown: {
            self.stop()
        }
    }

    /// Connects, then reconnects with back-off whenever the connection is lost, until stopping.
    private func maintainConnection(sslContext: NIOSSLContext?) async {
        var backoff = RedisReconnectBackoff(configuration: configuration.reconnect)
        var random = SystemRandomNumberGenerator()
        while !isStopping {
            let generation = state.withLock { state in
                state.generation += 1
                return state.generation
            }
            do {
                let connection = try await openConnection(sslContext: sslContext, generation: generation)
                backoff.reset()
                connectCounter.increment()
                guard publish(connection) else {
                    connection.closeGracefully()
                    try? await connection.channel.closeFuture.get()
                    break
                }
                logger.info(
                    "connected to redis",
                    metadata: ["redis.generation": "\(generation)", "redis.server": "\(connection.endpoint)"])
                try? await connection.channel.closeFuture.get()
                unpublish(connection, reason: await connection.closeReason())
            } catch {
                logger.info("cannot connect to redis", metadata: ["error.message": "\(error)"])
                emit(.connectFailed(RedisChannelHandler.redisError(error)))
            }
            guard !isStopping else { break }
            // ends early when stop() is called; throws when the task is cancelled (which stops the client too)
            do { try await backoffSleeper.sleep(for: backoff.nextDelay(using: &random)) } catch { break }
        }
    }

    /// Opens a ready connection to the server the topology names: the configured one, or the master the
    /// sentinels name (checked with `ROLE`). (A cluster's connections are opened by `maintainCluster`.)
    private func openConnection(sslContext: NIOSSLContext?, generation: Int) async throws -> RedisConnection {
        switch configuration.topology {
        case .sentinel(let settings):
            return try await connectToMaster(settings, sslContext: sslContext, generation: generation)
        case .standalone, .cluster:
            return try await RedisConnection.connect(
                to: RedisEndpoint(host: configuration.host, port: configuration.port), configuration: configuration,
                sslContext: sslContext, handshake: try handshake(), eventLoop: eventLoopGroup.any(),
                generation: generation, logger: logger)
        }
    }

    /// A stream of connection changes. If a connection is ready when it is created (with a cluster: every
    /// master is connected), it starts with that `.connected` event. It ends when ``run()`` returns.
    public func connectionEvents() -> AsyncStream<RedisConnectionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisConnectionEvent.self)
        let id: Int? = state.withLock { state in
            if state.finished { return nil }
            if let connection = state.connection { continuation.yield(.connected(generation: connection.generation)) }
            if state.cluster.usable { continuation.yield(.connected(generation: state.generation)) }
            let id = state.nextListenerID
            state.nextListenerID += 1
            state.listeners[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.listeners.removeValue(forKey: id) }
        }
        return stream
    }

    /// Whether a connection is ready right now (with a cluster: every slot's master is connected).
    public var isConnected: Bool {
        state.withLock { $0.connection != nil || $0.cluster.usable }
    }

    /// Sends one command and returns its reply. An error reply throws a ``RedisError`` with code
    /// ``RedisError/Code/server`` and the server's text; errors nested in arrays stay `.error` elements.
    ///
    /// With a cluster the command goes to the master of its first key's slot (without keys: to any master);
    /// `MOVED` and `ASK` are followed.
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RedisReply {
        if isCluster {
            return try await clusterSend(
                command, slot: command.clusterSlot, script: nil, deadline: deadline(timeout)
            ).reply
        }
        return try await send(command, on: try currentConnection(), timeout: timeout)
    }

    /// ``send(_:timeout:)`` on one particular connection (a `WAIT` must follow its write on the same one).
    func send(
        _ command: RedisCommand, on connection: RedisConnection, timeout: Duration?
    ) async throws(RedisError)
        -> RedisReply
    {
        commandCounter.increment()
        let reply: RedisReply
        do {
            reply = try await connection.send(
                command, deadline: .now() + TimeAmount(timeout ?? configuration.commandTimeout))
        } catch {
            countError(error)
            throw error
        }
        if case .error(let text) = reply {
            let error = RedisError(code: .server, message: text)
            countError(error)
            noteServerError(error, on: connection)
            throw error
        }
        return reply
    }

    /// Sends the commands as one pipeline (written together, flushed once) and returns each command's
    /// outcome in order; error replies become ``RedisError/Code/server`` failures. With a cluster there is one
    /// pipeline per master, the outcomes still in the caller's order.
    public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async -> [Result<RedisReply, RedisError>]
    {
        guard !commands.isEmpty else { return [] }
        if isCluster { return await clusterPipeline(commands, script: nil, deadline: deadline(timeout)) }
        let connection: RedisConnection
        do {
            connection = try currentConnection()
        } catch {
            return commands.map { _ in .failure(error) }
        }
        commandCounter.increment(by: Int64(commands.count))
        let results = await connection.pipeline(
            commands, deadline: .now() + TimeAmount(timeout ?? configuration.commandTimeout))
        return results.map { result in
            switch result {
            case .success(.error(let text)):
                let error = RedisError(code: .server, message: text)
                countError(error)
                noteServerError(error, on: connection)
                return .failure(error)
            case .success(let reply):
                return .success(reply)
            case .failure(let error):
                countError(error)
                return .failure(error)
            }
        }
    }

    /// The deadline of a command sent now with `timeout` (default ``RedisConfiguration/commandTimeout``).
    func deadline(_ timeout: Duration?) -> NIODeadline {
        .now() + TimeAmount(timeout ?? configuration.commandTimeout)
    }

    func currentConnection() throws(RedisError) -> RedisConnection {
        guard let connection = state.withLock({ $0.connection }) else {
            throw RedisError(code: .connection, message: "not connected to redis at \(configuration.endpoint)")
        }
        return connection
    }

    func countError(_ error: RedisError) {
        Counter(label: "affinity.redis.errors", dimensions: [("error.code", error.code.description)]).increment()
    }
}
