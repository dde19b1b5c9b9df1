import Logging
import Metrics
import NIOCore
import NIOSSL
import Synchronization

/// The connection a confirmed write and its `WAIT` run on (see ``RedisConfirmationConnections``).
extension RedisClient {
    /// The connection for confirmed writes next to the data connection `primary`, to the same server: opened on
    /// first use (callers that come while it opens wait for it), closed when `primary` closes. Throws a
    /// ``RedisError/Code/connection`` error when it cannot be opened (the next confirmed write tries again).
    func confirmationConnection(beside primary: RedisConnection) async throws(RedisError) -> RedisConnection {
        let key = ObjectIdentifier(primary.channel)
        enum Step {
            case wait(EventLoopFuture<RedisConnection>)
            case open(EventLoopPromise<RedisConnection>, sslContext: NIOSSLContext?)
            case stopping
        }
        let step = state.withLock { state -> Step in
            if state.stopping { return .stopping }
            if let entry = state.confirmations.entries[key] { return .wait(entry.ready) }
            let promise = primary.channel.eventLoop.makePromise(of: RedisConnection.self)
            state.confirmations.entries[key] = .init(primary: primary, ready: promise.futureResult)
            return .open(promise, sslContext: state.sslContext)
        }
        switch step {
        case .stopping:
            throw RedisError(code: .connection, message: "the redis client is stopping")
        case .wait(let ready):
            do {
                return try await ready.get()
            } catch {
                throw RedisChannelHandler.redisError(error)
            }
        case .open(let promise, let sslContext):
            primary.closed.whenComplete { [weak self] _ in self?.dataConnectionClosed(key) }
            do {
                let connection = try await openConfirmationConnection(beside: primary, key: key, sslContext: sslContext)
                promise.succeed(connection)
                return connection
            } catch {
                state.withLock { state in
                    if state.confirmations.entries[key]?.ready === promise.futureResult {
                        state.confirmations.entries[key] = nil
                    }
                }
                countError(error)
                promise.fail(error)
                throw error
            }
        }
    }

    private func openConfirmationConnection(
        beside primary: RedisConnection, key: ObjectIdentifier, sslContext: NIOSSLContext?
    ) async throws(RedisError) -> RedisConnection {
        let connection = try await RedisConnection.connect(
            to: primary.endpoint, configuration: configuration, sslContext: sslContext,
            handshake: try handshake(), eventLoop: primary.channel.eventLoop, generation: primary.generation,
            logger: logger)
        let kept = state.withLock { state in
            guard !state.stopping, state.confirmations.entries[key] != nil else { return false }
            state.confirmations.entries[key]?.connection = connection
            return true
        }
        guard kept else {
            connection.closeNow(reason: "its data connection closed")
            throw RedisError(code: .connection, message: "the connection to \(primary.endpoint) closed")
        }
        connectCounter.increment()
        logger.debug(
            "opened a connection for confirmed writes",
            metadata: ["redis.server": "\(primary.endpoint)", "redis.generation": "\(primary.generation)"])
        connection.closed.whenComplete { [weak self] _ in
            self?.confirmationConnectionClosed(key, connection: connection)
        }
        return connection
    }

    /// The data connection closed: its confirmation connection closes once its writes in flight are answered.
    private func dataConnectionClosed(_ key: ObjectIdentifier) {
        let entry = state.withLock { $0.confirmations.entries.removeValue(forKey: key) }
        entry?.connection?.closeGracefully()
    }

    /// The confirmation connection closed on its own (a missed deadline, the server): the next confirmed write
    /// opens another.
    private func confirmationConnectionClosed(_ key: ObjectIdentifier, connection: RedisConnection) {
        state.withLock { state in
            if let current = state.confirmations.entries[key]?.connection, current.channel === connection.channel {
                state.confirmations.entries[key] = nil
            }
        }
    }
}
