import Logging
import NIOCore
import Synchronization

extension RedisClient {
    /// Runs `script` with `EVALSHA`: loads it with `SCRIPT LOAD` on first use, and on `NOSCRIPT` loads it again
    /// and retries once. An error raised by the script throws a ``RedisError`` with code
    /// ``RedisError/Code/server``.
    public func evaluate(
        _ script: RedisScript, keys: [String], arguments: [RedisArgument], timeout: Duration? = nil
    ) async throws -> RedisReply {
        let call = RedisScriptCall(keys: keys, arguments: arguments)
        var sha = try await scriptHash(script, timeout: timeout)
        if isCluster {
            let command = Self.evalsha(sha, call)
            return try await clusterSend(
                command, slot: command.clusterSlot, script: script, deadline: deadline(timeout)
            )
            .reply
        }
        do {
            return try await send(Self.evalsha(sha, call), timeout: timeout)
        } catch let error as RedisError where error.isNoScript {
            logger.debug(
                "redis script missing; loading it again",
                metadata: ["redis.script": "\(script.name)", "error.message": "\(error)"])
            sha = try await loadScript(script, timeout: timeout)
            return try await send(Self.evalsha(sha, call), timeout: timeout)
        }
    }

    /// Runs `script` as ``evaluate(_:keys:arguments:timeout:)`` does and, when `mustConfirm(reply)` says the
    /// script wrote something that must survive a failover, sends `WAIT` on the same connection (so that it
    /// waits for this write). Throws ``RedisError/Code/replication`` when fewer than `replication.replicas`
    /// replicas confirmed within `replication.timeout`: the write happened on the master but may be lost.
    ///
    /// With `replication.replicas > 0` the script and its `WAIT` run on a connection for confirmed writes next to
    /// the shared one (with a cluster: next to the master's), so that no other command queues behind the
    /// `WAIT`; confirmed writes queue behind each other's.
    public func evaluate(
        _ script: RedisScript, keys: [String], arguments: [RedisArgument], replication: RedisReplicationRequirement,
        confirmingWhen mustConfirm: (RedisReply) -> Bool, timeout: Duration? = nil
    ) async throws -> RedisReply {
        guard replication.replicas > 0 else {
            return try await evaluate(script, keys: keys, arguments: arguments, timeout: timeout)
        }
        let call = RedisScriptCall(keys: keys, arguments: arguments)
        let reply: RedisReply
        let connection: RedisConnection
        if isCluster {
            // the WAIT goes to the master that ran the script
            let command = Self.evalsha(try await scriptHash(script, timeout: timeout), call)
            (reply, connection) = try await clusterSend(
                command, slot: command.clusterSlot, script: script, deadline: deadline(timeout), confirmed: true)
        } else {
            connection = try await confirmationConnection(beside: try currentConnection())
            reply = try await evaluate(script, call, on: connection, timeout: timeout)
        }
        guard mustConfirm(reply) else { return reply }
        let milliseconds = max(1, Int(replication.timeout / .milliseconds(1)))
        let confirmed = try await send(
            ["WAIT", String(replication.replicas), String(milliseconds)], on: connection,
            timeout: (timeout ?? configuration.commandTimeout) + replication.timeout)
        guard let count = confirmed.integer else {
            throw RedisError(code: .protocol, message: "WAIT returned \(confirmed)")
        }
        guard count >= replication.replicas else {
            throw RedisError(
                code: .replication,
                message: "\(script.name) was written on the master but confirmed by \(count) of "
                    + "\(replication.replicas) replicas within \(replication.timeout)")
        }
        return reply
    }

    /// `EVALSHA` on `connection`, loading the script again once on `NOSCRIPT`.
    private func evaluate(
        _ script: RedisScript, _ call: RedisScriptCall, on connection: RedisConnection, timeout: Duration?
    ) async throws -> RedisReply {
        let sha = try await scriptHash(script, timeout: timeout)
        let first: Result<RedisReply, RedisError>
        do {
            first = .success(try await send(Self.evalsha(sha, call), on: connection, timeout: timeout))
        } catch {
            first = .failure(error)
        }
        switch first {
        case .success(let reply):
            return reply
        case .failure(let error) where error.isNoScript:
            let reloaded = try await loadScript(script, timeout: timeout)
            return try await send(Self.evalsha(reloaded, call), on: connection, timeout: timeout)
        case .failure(let error):
            throw error
        }
    }

    /// Runs `script` once per call as one pipeline, with the same `NOSCRIPT` handling as
    /// ``evaluate(_:keys:arguments:timeout:)`` (the calls that hit `NOSCRIPT` are retried once, together).
    /// With a cluster, one pipeline per master (each call goes to the master of its first key's slot); the
    /// results are in the order of `calls`.
    public func evaluateAll(
        _ script: RedisScript, calls: [RedisScriptCall], timeout: Duration? = nil
    ) async -> [Result<RedisReply, RedisError>] {
        guard !calls.isEmpty else { return [] }
        var sha: String
        do {
            sha = try await scriptHash(script, timeout: timeout)
        } catch {
            return calls.map { _ in .failure(RedisChannelHandler.redisError(error)) }
        }
        if isCluster {
            return await clusterPipeline(
                calls.map { Self.evalsha(sha, $0) }, script: script, deadline: deadline(timeout))
        }
        var results = await pipeline(calls.map { Self.evalsha(sha, $0) }, timeout: timeout)
        let retry = results.indices.filter { index in
            if case .failure(let error) = results[index] { return error.isNoScript }
            return false
        }
        guard !retry.isEmpty else { return results }
        do {
            sha = try await loadScript(script, timeout: timeout)
        } catch {
            for index in retry { results[index] = .failure(RedisChannelHandler.redisError(error)) }
            return results
        }
        let retried = await pipeline(retry.map { Self.evalsha(sha, calls[$0]) }, timeout: timeout)
        for (index, result) in zip(retry, retried) { results[index] = result }
        return results
    }

    func scriptHash(_ script: RedisScript, timeout: Duration?) async throws -> String {
        if let sha = state.withLock({ $0.scriptHashes[script.source] }) { return sha }
        return try await loadScript(script, timeout: timeout)
    }

    func loadScript(_ script: RedisScript, timeout: Duration?) async throws -> String {
        let reply = try await send(["SCRIPT", "LOAD", script.source], timeout: timeout)
        guard let sha = reply.string, !sha.isEmpty else {
            throw RedisError(code: .protocol, message: "SCRIPT LOAD of \(script.name) returned \(reply)")
        }
        logger.debug("loaded redis script", metadata: ["redis.script": "\(script.name)", "redis.sha": "\(sha)"])
        state.withLock { $0.scriptHashes[script.source] = sha }
        return sha
    }

    static func evalsha(_ sha: String, _ call: RedisScriptCall) -> RedisCommand {
        // one array of the final size, and no temporary arrays on the way: a script call is sent per subscribe,
        // unsubscribe and park
        var words: [ByteBuffer] = []
        words.reserveCapacity(3 + call.keys.count + call.arguments.count)
        words.append(evalshaWord)
        words.append(ByteBuffer(string: sha))
        words.append(ByteBuffer(string: String(call.keys.count)))
        for key in call.keys { words.append(ByteBuffer(string: key)) }
        for argument in call.arguments { words.append(argument.bytes) }
        return RedisCommand(words: words)
    }

    /// The command's name, made once (a `ByteBuffer` copy shares its storage).
    private static let evalshaWord = ByteBuffer(string: "EVALSHA")
}

extension RedisError {
    /// Whether Redis answered `NOSCRIPT` (the script cache no longer has the script).
    var isNoScript: Bool {
        serverErrorPrefix == "NOSCRIPT"
    }
}
