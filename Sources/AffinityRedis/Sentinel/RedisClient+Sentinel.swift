import EventLoopTimers
import Logging
import Metrics
import NIOCore
import NIOSSL
import Synchronization

/// Redis Sentinel (``RedisTopology/sentinel(_:)``), following the Sentinel client protocol: ask the sentinels
/// in turn for the master (`SENTINEL get-master-addr-by-name`), check it with `ROLE`, and reconnect (asking
/// again) when a sentinel announces `+switch-master`, when the server answers `READONLY` (it was demoted), or
/// when the connection is lost.
extension RedisClient {
    /// The `AUTH` command for the sentinels, if they have a password; the password file is read each time.
    func sentinelHandshake(_ settings: RedisSentinelSettings) throws(RedisError) -> [RedisCommand] {
        var password = settings.password
        if let file = settings.passwordFile {
            password = try Self.readPasswordFile(file, what: "Redis Sentinel password file")
        }
        return password.map { [["AUTH", $0]] } ?? []
    }

    /// Asks the sentinels for the master, connects to it and checks with `ROLE` that it is a master.
    func connectToMaster(
        _ settings: RedisSentinelSettings, sslContext: NIOSSLContext?, generation: Int
    ) async throws -> RedisConnection {
        let master = try await discoverMaster(settings, sslContext: sslContext)
        let connection = try await RedisConnection.connect(
            to: master, configuration: configuration, sslContext: sslContext, handshake: try handshake(),
            eventLoop: eventLoopGroup.any(), generation: generation, logger: logger)
        let role: String?
        do {
            role = try await connection.send(["ROLE"], deadline: .now() + TimeAmount(configuration.commandTimeout))
                .array?.first?.string
        } catch {
            connection.closeNow(reason: "ROLE failed")
            throw error
        }
        guard role == "master" else {
            connection.closeNow(reason: "not the master")
            throw RedisError(
                code: .connection,
                message: "the sentinels name \(master) as master \(settings.masterName), but its ROLE is "
                    + "\(role ?? "unknown"); asking the sentinels again")
        }
        return connection
    }

    /// The master's address from the first sentinel that knows it, asking each in turn; the sentinel that
    /// answered is asked first next time. Throws a ``RedisError/Code/connection`` error listing why each
    /// sentinel failed.
    func discoverMaster(
        _ settings: RedisSentinelSettings, sslContext: NIOSSLContext?
    ) async throws(RedisError) -> RedisEndpoint {
        let handshake = try sentinelHandshake(settings)
        var failures: [String] = []
        for sentinel in state.withLock({ $0.sentinelOrder }) {
            do {
                let connection = try await RedisConnection.connect(
                    to: sentinel, configuration: configuration, sslContext: sslContext, handshake: handshake,
                    eventLoop: eventLoopGroup.any(), generation: 0, logger: logger)
                defer { connection.closeGracefully() }
                let reply = try await connection.send(
                    ["SENTINEL", "get-master-addr-by-name", settings.masterName],
                    deadline: .now() + TimeAmount(configuration.commandTimeout))
                if let master = Self.masterAddress(reply) {
                    state.withLock { state in
                        state.sentinelOrder.removeAll { $0 == sentinel }
                        state.sentinelOrder.insert(sentinel, at: 0)
                    }
                    return master
                }
                if case .error(let text) = reply {
                    failures.append("\(sentinel): \(text)")
                } else {
                    failures.append("\(sentinel) does not monitor a master named \(settings.masterName)")
                }
            } catch {
                failures.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisError(
            code: .connection,
            message: "no sentinel named the master \(settings.masterName): " + failures.joined(separator: "; "))
    }

    /// Subscribes to `+switch-master` on one sentinel after the other, for as long as the task runs: a
    /// failover announced for our master closes the connection to the old one, and the client reconnects to
    /// the new one at once. On (re)subscribing it also asks for the master, in case a failover happened while
    /// no subscription was up.
    func followFailovers(_ settings: RedisSentinelSettings, sslContext: NIOSSLContext?) async {
        var backoff = RedisReconnectBackoff(configuration: configuration.reconnect)
        var random = SystemRandomNumberGenerator()
        while !Task.isCancelled && !isStopping {
            for sentinel in state.withLock({ $0.sentinelOrder }) where !Task.isCancelled {
                if await subscribeToFailovers(settings, sentinel: sentinel, sslContext: sslContext) {
                    backoff.reset()
                }
            }
            do {
                try await Task.sleep(for: backoff.nextDelay(using: &random))
            } catch {
                return
            }
        }
    }

    /// Follows `+switch-master` through one sentinel until that connection ends or the task is cancelled;
    /// returns whether the subscription was established.
    private func subscribeToFailovers(
        _ settings: RedisSentinelSettings, sentinel: RedisEndpoint, sslContext: NIOSSLContext?
    ) async -> Bool {
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(
                to: sentinel, configuration: configuration, sslContext: sslContext,
                handshake: try sentinelHandshake(settings), eventLoop: eventLoopGroup.any(), generation: 0,
                logger: logger,
                onPush: { [weak self] message in self?.sentinelMessage(message, masterName: settings.masterName) })
        } catch {
            logger.debug(
                "cannot subscribe to a sentinel",
                metadata: ["redis.sentinel": "\(sentinel)", "error.message": "\(error)"])
            return false
        }
        return await withTaskCancellationHandler {
            let replies = await connection.pipeline(
                [["SENTINEL", "get-master-addr-by-name", settings.masterName], ["SUBSCRIBE", "+switch-master"]],
                deadline: .now() + TimeAmount(configuration.commandTimeout))
            guard case .success(let subscribed) = replies[1], subscribed.array?.first?.string == "subscribe" else {
                connection.closeNow(reason: "SUBSCRIBE failed")
                return false
            }
            logger.debug("following failovers", metadata: ["redis.sentinel": "\(sentinel)"])
            if case .success(let reply) = replies[0], let master = Self.masterAddress(reply) {
                masterAnnounced(master, masterName: settings.masterName)
            }
            let reason = await connection.closeReason()
            logger.debug(
                "lost the sentinel subscription",
                metadata: ["redis.sentinel": "\(sentinel)", "error.message": "\(reason)"])
            return true
        } onCancel: {
            connection.closeNow(reason: "the client is stopping")
        }
    }

    /// A message on the sentinel subscription: `+switch-master <name> <old ip> <old port> <new ip> <new port>`.
    private func sentinelMessage(_ message: RedisReply, masterName: String) {
        guard let elements = message.array, elements.count == 3, elements[1].string == "+switch-master",
            let words = elements[2].string?.split(separator: " "), words.count == 5, words[0] == masterName,
            let port = Int(words[4])
        else { return }
        masterAnnounced(RedisEndpoint(host: String(words[3]), port: port), masterName: masterName)
    }

    /// The sentinels name `master`: a connection to another server is closed (the run loop asks again and
    /// connects to the new master), and a pending reconnect back-off ends at once.
    private func masterAnnounced(_ master: RedisEndpoint, masterName: String) {
        let connection = state.withLock { $0.connection }
        if let connection {
            guard connection.endpoint != master else { return }
            failoverCounter.increment()
            logger.info(
                "the sentinels moved the master; reconnecting",
                metadata: [
                    "redis.master": "\(masterName)", "redis.from": "\(connection.endpoint)", "redis.to": "\(master)",
                ])
            connection.closeNow(reason: "the sentinels moved master \(masterName) to \(master)")
        } else {
            backoffSleeper.wake()
        }
    }

    /// Reacts to an error reply: with Sentinel, `READONLY` means the server was demoted to a replica, so the
    /// connection is closed (and the shared one, when the reply came on the connection for confirmed writes
    /// next to it) and the client asks the sentinels again.
    func noteServerError(_ error: RedisError, on connection: RedisConnection) {
        guard case .sentinel = configuration.topology, error.serverErrorPrefix == "READONLY" else { return }
        logger.info(
            "redis answered READONLY; asking the sentinels for the master again",
            metadata: ["redis.server": "\(connection.endpoint)"])
        failoverCounter.increment()
        let reason = "\(connection.endpoint) is a replica now (READONLY)"
        connection.closeNow(reason: reason)
        if let shared = state.withLock({ $0.connection }), shared.endpoint == connection.endpoint,
            shared.channel !== connection.channel
        {
            shared.closeNow(reason: reason)
        }
    }

    /// The `[ip, port]` reply of `SENTINEL get-master-addr-by-name`, or nil (unknown master, error).
    static func masterAddress(_ reply: RedisReply) -> RedisEndpoint? {
        guard let elements = reply.array, elements.count == 2, let host = elements[0].string, !host.isEmpty,
            let portText = elements[1].string, let port = Int(portText), (1...65535).contains(port)
        else { return nil }
        return RedisEndpoint(host: host, port: port)
    }
}
