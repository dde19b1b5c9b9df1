import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One established, ready connection (handshake done): a channel whose pipeline ends in
/// ``RedisChannelHandler``. Reconnecting is ``RedisClient``'s job.
struct RedisConnection: Sendable {
    let channel: any Channel
    let generation: Int
    /// The server this connection is to.
    let endpoint: RedisEndpoint
    let closed: EventLoopFuture<RedisError>

    /// Opens a connection to `endpoint` and completes the `AUTH`/`SELECT` handshake, or throws a
    /// ``RedisError``. `onPush` receives the pub/sub messages of a subscribed connection (on the event loop).
    static func connect(
        to endpoint: RedisEndpoint, configuration: RedisConfiguration, sslContext: NIOSSLContext?,
        handshake: [RedisCommand], eventLoop: any EventLoop, generation: Int, logger: Logger,
        onPush: (@Sendable (RedisReply) -> Void)? = nil
    ) async throws(RedisError) -> RedisConnection {
        let readyPromise = eventLoop.makePromise(of: Void.self)
        let closedPromise = eventLoop.makePromise(of: RedisError.self)
        let serverName = configuration.tls?.serverName ?? (isIPAddress(endpoint.host) ? nil : endpoint.host)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        RedisChannelHandler(
                            handshake: handshake, endpoint: endpoint.description, readyPromise: readyPromise,
                            closedPromise: closedPromise, onPush: onPush,
                            handshakeTimeout: TimeAmount(configuration.connectTimeout),
                            deadlineCheckInterval: TimeAmount(configuration.deadlineCheckInterval),
                            maximumReplyBytes: configuration.maximumReplyBytes, logger: logger,
                            waitsForTLSHandshake: sslContext != nil))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            let redisError = RedisError(
                code: .connection, message: "cannot connect to \(endpoint): \(error)", cause: error)
            readyPromise.fail(redisError)
            closedPromise.succeed(redisError)
            throw redisError
        }
        do {
            try await readyPromise.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw RedisChannelHandler.redisError(error)
        }
        return RedisConnection(
            channel: channel, generation: generation, endpoint: endpoint, closed: closedPromise.futureResult)
    }

    /// Why the connection ended; waits until it has.
    func closeReason() async -> RedisError {
        (try? await closed.get()) ?? RedisError(code: .connection, message: "the connection closed")
    }

    /// Sends one command; the reply (error replies included) or a ``RedisError``.
    func send(_ command: RedisCommand, deadline: NIODeadline) async throws(RedisError) -> RedisReply {
        let promise = channel.eventLoop.makePromise(of: RedisReply.self)
        channel.writeAndFlush(RedisRequest(command: command, deadline: deadline, promise: promise)).whenFailure {
            promise.fail($0)
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            throw RedisChannelHandler.redisError(error)
        }
    }

    /// Writes every command, flushes once, and collects the replies in order.
    func pipeline(_ commands: [RedisCommand], deadline: NIODeadline) async -> [Result<RedisReply, RedisError>] {
        let promises = commands.map { _ in channel.eventLoop.makePromise(of: RedisReply.self) }
        for (command, promise) in zip(commands, promises) {
            channel.write(RedisRequest(command: command, deadline: deadline, promise: promise)).whenFailure {
                promise.fail($0)
            }
        }
        channel.flush()
        var results: [Result<RedisReply, RedisError>] = []
        results.reserveCapacity(promises.count)
        for promise in promises {
            do {
                results.append(.success(try await promise.futureResult.get()))
            } catch {
                results.append(.failure(RedisChannelHandler.redisError(error)))
            }
        }
        return results
    }

    /// Closes at once: the commands in flight fail with ``RedisError/Code/connection``.
    func closeNow(reason: String) {
        channel.triggerUserOutboundEvent(RedisImmediateClose(reason: reason), promise: nil)
    }

    /// Closes once the commands in flight are answered; new commands fail.
    func closeGracefully() {
        channel.triggerUserOutboundEvent(RedisGracefulClose(), promise: nil)
    }

    private static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

extension TimeAmount {
    /// The same span as a `Duration`, in nanoseconds.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
