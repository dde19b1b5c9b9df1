import Logging
import Metrics
import NIOCore
import NIOSSL
import Synchronization

/// Redis Cluster (``RedisTopology/cluster(seeds:)``): the slot map from `CLUSTER SHARDS`, asked of the
/// connected masters and then of the seed nodes in turn; one pipelined connection per master; a refresh of
/// the map whenever a master's connection is lost or a redirection names a node the client has no connection
/// to. The commands themselves are routed in `RedisClient+ClusterCommands.swift`.
///
/// The cluster is usable (`.connected`) when every slot has a master and the client is connected to each.
/// Losing any master's connection reports `.disconnected` (the master may have died with writes its replica
/// never got); the next usable map, after a failover, reports `.connected` again, so callers write back
/// what Redis may have lost, as after a restart of a single Redis.
extension RedisClient {
    /// Keeps the slot map and the master connections current until the client stops.
    func maintainCluster(seeds: [RedisEndpoint], sslContext: NIOSSLContext?) async {
        var backoff = RedisReconnectBackoff(configuration: configuration.reconnect)
        var random = SystemRandomNumberGenerator()
        while !isStopping {
            let waiters = state.withLock { state in
                state.cluster.wakeRequested = false
                let waiters = state.cluster.refreshWaiters
                state.cluster.refreshWaiters.removeAll()
                return waiters
            }
            var delay: Duration?
            do {
                try await refreshCluster(seeds: seeds, sslContext: sslContext)
                backoff.reset()
            } catch {
                logger.info("cannot reach the whole redis cluster", metadata: ["error.message": "\(error)"])
                emit(.connectFailed(error))
                delay = backoff.nextDelay(using: &random)
            }
            waiters.forEach { $0.resume() }
            await waitForClusterWake(orAfter: delay)
        }
        // graceful shutdown: stop() closed every connection once its commands in flight are answered
        let connections = state.withLock { Array($0.cluster.connections.values) }
        for connection in connections { try? await connection.channel.closeFuture.get() }
    }

    /// Fetches the slot map, connects to new masters, closes connections to nodes that are no longer masters,
    /// and announces `.connected` when the cluster became usable. Throws when a master cannot be reached or
    /// some slot has no master (the connections that could be made are kept and used meanwhile).
    private func refreshCluster(seeds: [RedisEndpoint], sslContext: NIOSSLContext?) async throws(RedisError) {
        let slotMap = try await fetchSlotMap(seeds: seeds, sslContext: sslContext)
        let (existing, generation) = state.withLock { ($0.cluster.connections, $0.generation + 1) }
        var opened: [RedisEndpoint: RedisConnection] = [:]
        var failures: [String] = []
        for master in slotMap.masters where existing[master] == nil {
            do {
                opened[master] = try await RedisConnection.connect(
                    to: master, configuration: configuration, sslContext: sslContext, handshake: try handshake(),
                    eventLoop: eventLoopGroup.any(), generation: generation, logger: logger)
            } catch {
                failures.append("\(master): \(error.message)")
            }
        }
        let outcome = state.withLock { state -> (retired: [RedisConnection], announce: Int?)? in
            guard !state.stopping else { return nil }
            state.cluster.slotMap = slotMap
            var retired: [RedisConnection] = []
            for (endpoint, connection) in state.cluster.connections where !slotMap.masters.contains(endpoint) {
                retired.append(connection)
                state.cluster.connections[endpoint] = nil
            }
            // only this task adds connections, and only for masters that had none
            state.cluster.connections.merge(opened) { old, _ in old }
            let complete =
                slotMap.assignedSlotCount == RedisClusterSlot.count
                && slotMap.masters.allSatisfy { state.cluster.connections[$0] != nil }
            guard complete, !state.cluster.usable else { return (retired, nil) }
            state.cluster.usable = true
            state.generation += 1
            return (retired, state.generation)
        }
        guard let outcome else {
            opened.values.forEach { $0.closeNow(reason: "the client is stopping") }
            return
        }
        for connection in opened.values {
            connection.closed.whenComplete { [weak self] result in
                let reason =
                    (try? result.get()) ?? RedisError(code: .connection, message: "the connection closed")
                self?.clusterConnectionClosed(connection, reason: reason)
            }
        }
        outcome.retired.forEach { $0.closeGracefully() }
        if !opened.isEmpty { connectCounter.increment(by: Int64(opened.count)) }
        if let generation = outcome.announce {
            logger.info(
                "connected to the redis cluster",
                metadata: [
                    "redis.generation": "\(generation)",
                    "redis.masters": "\(slotMap.masters.map(\.description).joined(separator: ","))",
                ])
            emit(.connected(generation: generation))
        }
        guard failures.isEmpty else {
            throw RedisError(
                code: .connection,
                message: "cannot connect to every master of the redis cluster: " + failures.joined(separator: "; "))
        }
        guard slotMap.assignedSlotCount == RedisClusterSlot.count else {
            throw RedisError(
                code: .connection,
                message: "the redis cluster serves \(slotMap.assignedSlotCount) of \(RedisClusterSlot.count) slots")
        }
    }

    /// The slot map from the first node that answers `CLUSTER SHARDS`: the connected masters first, then the
    /// masters of the last map and the seeds (on a connection opened for the question). Throws a
    /// ``RedisError/Code/connection`` error listing why each node failed.
    private func fetchSlotMap(
        seeds: [RedisEndpoint], sslContext: NIOSSLContext?
    ) async throws(RedisError) -> RedisClusterSlotMap {
        let (connected, known) = state.withLock { state in
            (Array(state.cluster.connections.values), state.cluster.slotMap?.masters ?? [])
        }
        var failures: [String] = []
        var asked = Set<RedisEndpoint>()
        for connection in connected where connection.channel.isActive {
            asked.insert(connection.endpoint)
            do {
                return try await askSlotMap(connection)
            } catch {
                failures.append("\(connection.endpoint): \(error.message)")
            }
        }
        for node in known + seeds where asked.insert(node).inserted {
            do {
                let connection = try await RedisConnection.connect(
                    to: node, configuration: configuration, sslContext: sslContext, handshake: try handshake(),
                    eventLoop: eventLoopGroup.any(), generation: 0, logger: logger)
                defer { connection.closeGracefully() }
                return try await askSlotMap(connection)
            } catch {
                failures.append("\(node): \(error.message)")
            }
        }
        throw RedisError(
            code: .connection,
            message: "no node of the redis cluster answered CLUSTER SHARDS: " + failures.joined(separator: "; "))
    }

    private func askSlotMap(_ connection: RedisConnection) async throws(RedisError) -> RedisClusterSlotMap {
        let reply = try await connection.send(
            ["CLUSTER", "SHARDS"], deadline: .now() + TimeAmount(configuration.commandTimeout))
        if case .error(let text) = reply { throw RedisError(code: .server, message: text) }
        return try RedisClusterSlotMap.parse(
            shardsReply: reply, useTLSPort: configuration.tls != nil, replyingHost: connection.endpoint.host)
    }

    /// A master's connection ended: it leaves the pool, the cluster is no longer usable (`.disconnected`),
    /// and the maintaining task refreshes the map (the master may have failed over to a replica).
    private func clusterConnectionClosed(_ connection: RedisConnection, reason: RedisError) {
        let (pooled, lostGeneration) = state.withLock { state -> (Bool, Int?) in
            guard let current = state.cluster.connections[connection.endpoint],
                ObjectIdentifier(current.channel) == ObjectIdentifier(connection.channel)
            else { return (false, nil) }
            state.cluster.connections[connection.endpoint] = nil
            guard state.cluster.usable else { return (true, nil) }
            state.cluster.usable = false
            return (true, state.generation)
        }
        guard pooled else { return }
        if let generation = lostGeneration {
            logger.info(
                "lost the connection to a redis cluster master",
                metadata: [
                    "redis.generation": "\(generation)", "redis.server": "\(connection.endpoint)",
                    "error.message": "\(reason)",
                ])
            emit(.disconnected(generation: generation, reason: reason))
        }
        wakeClusterMaintainer()
    }

    /// Wakes the task that maintains the slot map, or has it refresh once more when it is busy.
    func wakeClusterMaintainer() {
        state.withLock { $0.cluster.takeWakeWaiter() }?.resume()
    }

    /// Waits for a wake-up (or, with a `delay`, at most that long, the reconnect back-off), or until the
    /// client stops.
    private func waitForClusterWake(orAfter delay: Duration?) async {
        let eventLoop = eventLoopGroup.any()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state in
                if state.stopping || state.cluster.wakeRequested {
                    state.cluster.wakeRequested = false
                    return true
                }
                state.cluster.wakeWaiter = continuation
                if let delay {
                    state.cluster.wakeTimer = eventLoop.scheduleTask(in: TimeAmount(delay)) { [weak self] in
                        self?.wakeClusterMaintainer()
                    }
                }
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Asks the maintaining task for a fresh slot map and waits until it has tried once (a redirection named
    /// a node the client has no connection to). Returns at once when the client is stopping.
    func awaitClusterRefresh() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (resumeNow, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                if state.stopping { return (true, nil) }
                state.cluster.refreshWaiters.append(continuation)
                return (false, state.cluster.takeWakeWaiter())
            }
            waiter?.resume()
            if resumeNow { continuation.resume() }
        }
    }
}
