import Logging
import Metrics
import NIOCore
import Synchronization

/// Redis Cluster command routing: a command goes to the master of its first key's slot (a script: of
/// `KEYS[1]`; a command without keys: to any master). `MOVED` updates the slot map and sends the command to
/// the named master; `ASK` sends `ASKING` and the command to the named node; `TRYAGAIN` (a multi-key command
/// while its slot migrates) waits a moment and sends it again; `NOSCRIPT` loads the script on the node that
/// answered it and sends it again, once. Pipelines are split per master and answered in the caller's order.
extension RedisClient {
    /// The most redirections (`MOVED`, `ASK`) one command follows before it fails (`TRYAGAIN` is retried until
    /// the command's deadline).
    static let maximumClusterRedirections = 16

    /// Whether the client talks to a Redis Cluster.
    var isCluster: Bool {
        if case .cluster = configuration.topology { return true }
        return false
    }

    /// The connection to the master of `slot` (`nil`: any master), or a ``RedisError/Code/connection`` error at
    /// once when there is none (the contract of a disconnected client: fail fast).
    func clusterConnection(forSlot slot: Int?) throws(RedisError) -> RedisConnection {
        try state.withLock {
            $0.cluster.connection(forSlot: slot, clusterDescription: configuration.endpoint)
        }.get()
    }

    /// Sends one command to the master of `slot`, following redirections, and returns the reply with the
    /// connection that answered it (a `WAIT` for the write must go there). With a `script`, a `NOSCRIPT` reply
    /// loads it on that node and the command is sent again, once. An error reply throws
    /// ``RedisError/Code/server``. With `confirmed`, the command goes on that master's connection for confirmed
    /// writes (``confirmationConnection(beside:)``), which is the one returned.
    func clusterSend(
        _ command: RedisCommand, slot: Int?, script: RedisScript?, deadline: NIODeadline, confirmed: Bool = false
    ) async throws(RedisError) -> (reply: RedisReply, connection: RedisConnection) {
        var connection = try clusterConnection(forSlot: slot)
        var asking = false
        var reloaded = false
        var redirections = 0
        while true {
            guard NIODeadline.now() < deadline else {
                let error = RedisError(code: .timeout, message: "\(command.name) got no reply before its deadline")
                countError(error)
                throw error
            }
            let target = confirmed ? try await confirmationConnection(beside: connection) : connection
            commandCounter.increment()
            let reply: RedisReply
            do {
                if asking {
                    reply = try await target.pipeline([["ASKING"], command], deadline: deadline)[1].get()
                } else {
                    reply = try await target.send(command, deadline: deadline)
                }
            } catch {
                countError(error)
                throw error
            }
            guard case .error(let text) = reply else { return (reply, target) }
            if let redirection = RedisClusterRedirection(errorText: text, replyingHost: connection.endpoint.host) {
                redirections += 1
                guard redirections <= Self.maximumClusterRedirections else {
                    let error = RedisError(
                        code: .connection,
                        message: "\(command.name) was redirected more than \(Self.maximumClusterRedirections) "
                            + "times (last: \(text)); the redis cluster's slot map is changing")
                    countError(error)
                    throw error
                }
                switch redirection {
                case .moved(let movedSlot, let endpoint):
                    logger.trace(
                        "redis cluster slot moved",
                        metadata: ["redis.slot": "\(movedSlot)", "redis.server": "\(endpoint)"])
                    state.withLock { $0.cluster.slotMap?.assign(slot: movedSlot, to: endpoint) }
                    // learn the rest of a resharding in the background
                    wakeClusterMaintainer()
                    connection = try await clusterConnection(to: endpoint, named: "MOVED \(movedSlot)")
                    asking = false
                case .ask(let askedSlot, let endpoint):
                    connection = try await clusterConnection(to: endpoint, named: "ASK \(askedSlot)")
                    asking = true
                }
                continue
            }
            let error = RedisError(code: .server, message: text)
            if error.serverErrorPrefix == "TRYAGAIN" {
                // the keys of a multi-key command are split between the two ends of a migration for a moment
                try? await Task.sleep(for: .milliseconds(5))
                connection = try clusterConnection(forSlot: slot)
                asking = false
                continue
            }
            if error.isNoScript, let script, !reloaded {
                reloaded = true
                try await loadScript(script, on: connection, deadline: deadline)
                continue
            }
            countError(error)
            throw error
        }
    }

    /// Sends the commands as one pipeline per master (each written together and flushed once, the masters in
    /// parallel) and returns each command's outcome in the caller's order. Commands answered with a
    /// redirection are sent again one by one through ``clusterSend(_:slot:script:deadline:)``; with a
    /// `script`, those answered `NOSCRIPT` are sent again together after one `SCRIPT LOAD` on that master.
    func clusterPipeline(
        _ commands: [RedisCommand], script: RedisScript?, deadline: NIODeadline
    ) async -> [Result<RedisReply, RedisError>] {
        let routes = state.withLock { state in
            commands.map {
                state.cluster.connection(forSlot: $0.clusterSlot, clusterDescription: configuration.endpoint)
            }
        }
        var results = [Result<RedisReply, RedisError>?](repeating: nil, count: commands.count)
        var batches: [ObjectIdentifier: ClusterBatch] = [:]
        for (index, route) in routes.enumerated() {
            switch route {
            case .success(let connection):
                batches[ObjectIdentifier(connection.channel), default: ClusterBatch(connection: connection)]
                    .indices.append(index)
            case .failure(let error):
                countError(error)
                results[index] = .failure(error)
            }
        }
        await withTaskGroup(of: [(Int, Result<RedisReply, RedisError>)].self) { group in
            for batch in batches.values {
                group.addTask {
                    await self.sendBatch(batch, of: commands, script: script, deadline: deadline)
                }
            }
            for await answered in group {
                for (index, result) in answered { results[index] = result }
            }
        }
        return results.map {
            $0 ?? .failure(RedisError(code: .connection, message: "the command was not sent"))
        }
    }

    /// The commands of one pipeline that go to one master.
    private struct ClusterBatch: Sendable {
        var connection: RedisConnection
        var indices: [Int] = []
    }

    private func sendBatch(
        _ batch: ClusterBatch, of commands: [RedisCommand], script: RedisScript?, deadline: NIODeadline
    ) async -> [(Int, Result<RedisReply, RedisError>)] {
        commandCounter.increment(by: Int64(batch.indices.count))
        var replies = await batch.connection.pipeline(batch.indices.map { commands[$0] }, deadline: deadline)
        if let script {
            let missing = replies.indices.filter { position in
                if case .success(.error(let text)) = replies[position] { return text.hasPrefix("NOSCRIPT") }
                return false
            }
            if !missing.isEmpty {
                do {
                    try await loadScript(script, on: batch.connection, deadline: deadline)
                    commandCounter.increment(by: Int64(missing.count))
                    let again = await batch.connection.pipeline(
                        missing.map { commands[batch.indices[$0]] }, deadline: deadline)
                    for (position, reply) in zip(missing, again) { replies[position] = reply }
                } catch {
                    for position in missing { replies[position] = .failure(error) }
                }
            }
        }
        var answered: [(Int, Result<RedisReply, RedisError>)] = []
        answered.reserveCapacity(replies.count)
        for (index, reply) in zip(batch.indices, replies) {
            switch reply {
            case .success(.error(let text)) where Self.isClusterRetry(text):
                do {
                    let reply = try await clusterSend(
                        commands[index], slot: commands[index].clusterSlot, script: script, deadline: deadline
                    ).reply
                    answered.append((index, .success(reply)))
                } catch {
                    answered.append((index, .failure(error)))
                }
            case .success(.error(let text)):
                let error = RedisError(code: .server, message: text)
                countError(error)
                answered.append((index, .failure(error)))
            case .success(let reply):
                answered.append((index, .success(reply)))
            case .failure(let error):
                countError(error)
                answered.append((index, .failure(error)))
            }
        }
        return answered
    }

    /// Whether an error reply asks the client to send the command again elsewhere or later.
    private static func isClusterRetry(_ text: String) -> Bool {
        text.hasPrefix("MOVED ") || text.hasPrefix("ASK ") || text.hasPrefix("TRYAGAIN")
    }

    /// The connection to `endpoint`, a node a redirection named; when there is none yet (a master the client
    /// has not seen), after one refresh of the slot map. Throws a ``RedisError/Code/connection`` error when
    /// the refreshed map does not make it a master the client is connected to.
    private func clusterConnection(
        to endpoint: RedisEndpoint, named redirection: String
    ) async throws(RedisError) -> RedisConnection {
        if let connection = state.withLock({ $0.cluster.connections[endpoint] }) { return connection }
        await awaitClusterRefresh()
        if let connection = state.withLock({ $0.cluster.connections[endpoint] }) { return connection }
        let error = RedisError(
            code: .connection,
            message: "the redis cluster answered \(redirection) \(endpoint), but the client has no connection to "
                + "that node and the slot map does not name it as a master")
        countError(error)
        throw error
    }

    /// `SCRIPT LOAD` on one node (each master of a cluster has its own script cache).
    private func loadScript(
        _ script: RedisScript, on connection: RedisConnection, deadline: NIODeadline
    ) async throws(RedisError) {
        logger.debug(
            "loading a redis script on a cluster node",
            metadata: ["redis.script": "\(script.name)", "redis.server": "\(connection.endpoint)"])
        commandCounter.increment()
        let reply = try await connection.send(["SCRIPT", "LOAD", script.source], deadline: deadline)
        if case .error(let text) = reply { throw RedisError(code: .server, message: text) }
        guard let sha = reply.string, !sha.isEmpty else {
            throw RedisError(code: .protocol, message: "SCRIPT LOAD of \(script.name) returned \(reply.kind)")
        }
        state.withLock { $0.scriptHashes[script.source] = sha }
    }
}
