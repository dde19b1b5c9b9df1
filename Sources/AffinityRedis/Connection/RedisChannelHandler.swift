import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// A command on its way to Redis: written into the channel as an outbound message.
struct RedisRequest: Sendable {
    var command: RedisCommand
    var deadline: NIODeadline
    var promise: EventLoopPromise<RedisReply>
}

/// The outbound user event that asks the handler to close once the commands in flight are answered.
struct RedisGracefulClose: Sendable {}

/// The outbound user event that closes the connection at once (the server is no longer the one to talk to):
/// the commands in flight fail with ``RedisError/Code/connection`` and `reason`.
struct RedisImmediateClose: Sendable {
    var reason: String
}

/// The channel handler of one Redis connection: formats commands with hiredis, reads replies with hiredis's
/// reader and lets ``RedisConnectionStateMachine`` pair them, run the handshake and enforce deadlines.
///
/// Everything runs on the channel's event loop; callers write ``RedisRequest`` values and await their
/// promises, so no thread ever waits on Redis.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    /// A written command awaiting its reply (or held back during the handshake).
    struct Pending {
        var bytes: ByteBuffer
        var promise: EventLoopPromise<RedisReply>
    }

    private var stateMachine: RedisConnectionStateMachine<Pending>
    private let reader: RedisReplyReader
    private let readyPromise: EventLoopPromise<Void>
    private let closedPromise: EventLoopPromise<RedisError>
    private let handshakeTimeout: TimeAmount
    private let deadlineCheckInterval: TimeAmount
    private let logger: Logger
    private let onPush: (@Sendable (RedisReply) -> Void)?
    private var deadlineTimer: RepeatedTask?
    private var closeCause: RedisError?
    private var activated = false
    /// With TLS, the connection is used (handshake commands written, or ready) only once the TLS handshake
    /// completed: a connection without handshake commands would otherwise be ready before it, and a command
    /// written then could fail with the channel's closing instead of the TLS error that closed it.
    private var waitsForTLSHandshake: Bool
    private var tlsHandshakeTimer: Scheduled<Void>?
    private let endpoint: String

    /// Creates the handler. `readyPromise` succeeds when the handshake completes and fails if the connection
    /// never becomes ready; `closedPromise` receives the reason the connection ended.
    init(
        handshake: [RedisCommand], endpoint: String, readyPromise: EventLoopPromise<Void>,
        closedPromise: EventLoopPromise<RedisError>, onPush: (@Sendable (RedisReply) -> Void)? = nil,
        handshakeTimeout: TimeAmount, deadlineCheckInterval: TimeAmount, maximumReplyBytes: Int, logger: Logger,
        waitsForTLSHandshake: Bool = false
    ) {
        self.waitsForTLSHandshake = waitsForTLSHandshake
        self.endpoint = endpoint
        self.onPush = onPush
        self.stateMachine = RedisConnectionStateMachine(handshake: handshake, endpoint: endpoint)
        self.reader = RedisReplyReader(maximumBufferedBytes: maximumReplyBytes)
        self.readyPromise = readyPromise
        self.closedPromise = closedPromise
        self.handshakeTimeout = handshakeTimeout
        self.deadlineCheckInterval = deadlineCheckInterval
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive && !waitsForTLSHandshake { activate(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        tlsHandshakeTimer?.cancel()
        tlsHandshakeTimer = nil
        failEverything(cause: closeCause)
    }

    func channelActive(context: ChannelHandlerContext) {
        if waitsForTLSHandshake {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let timeout = handshakeTimeout
            tlsHandshakeTimer = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = loopBound.value
                handler.close(
                    context: context,
                    cause: RedisError(
                        code: .timeout,
                        message: "the TLS handshake with \(handler.endpoint) did not complete within \(timeout)"))
            }
        } else {
            activate(context: context)
        }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if waitsForTLSHandshake, let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            waitsForTLSHandshake = false
            tlsHandshakeTimer?.cancel()
            tlsHandshakeTimer = nil
            if context.channel.isActive { activate(context: context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func activate(context: ChannelHandlerContext) {
        guard !activated else { return }
        activated = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadlineTimer = context.eventLoop.scheduleRepeatedTask(
            initialDelay: deadlineCheckInterval, delay: deadlineCheckInterval
        ) { _ in
            let (handler, context) = loopBound.value
            handler.checkDeadlines(context: context)
        }
        switch stateMachine.channelActive(handshakeDeadline: context.eventLoop.now + handshakeTimeout) {
        case .writeHandshake(let commands):
            for command in commands {
                do {
                    context.write(wrapOutboundOut(try RedisCommandEncoder.encode(command)), promise: nil)
                } catch {
                    close(context: context, cause: error)
                    return
                }
            }
            context.flush()
        case .ready(let held):
            readyPromise.succeed(())
            writeReleased(held, context: context)
        case .close:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        tlsHandshakeTimer?.cancel()
        tlsHandshakeTimer = nil
        failEverything(cause: closeCause)
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        // room for the whole command at once: its words, and per word at most 16 bytes of RESP framing
        var bytes = context.channel.allocator.buffer(
            capacity: request.command.words.reduce(16) { $0 + $1.readableBytes + 16 })
        do {
            try RedisCommandEncoder.encode(request.command, into: &bytes)
        } catch {
            request.promise.fail(error)
            promise?.fail(error)
            return
        }
        switch stateMachine.enqueue(Pending(bytes: bytes, promise: request.promise), deadline: request.deadline) {
        case .write:
            logger.trace("redis command", metadata: ["redis.command": "\(request.command.name)"])
            context.write(wrapOutboundOut(bytes), promise: promise)
        case .hold:
            promise?.succeed(())
        case .fail(let error):
            request.promise.fail(error)
            promise?.fail(error)
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if let event = event as? RedisImmediateClose {
            promise?.succeed(())
            close(context: context, cause: RedisError(code: .connection, message: event.reason))
            return
        }
        guard event is RedisGracefulClose else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed(())
        switch stateMachine.close() {
        case .closeNow(let held, let error):
            if closeCause == nil { closeCause = error }
            held.forEach { $0.promise.fail(error) }
            readyPromise.fail(error)
            context.close(promise: nil)
        case .waitForReplies(let held, let error):
            if closeCause == nil { closeCause = error }
            held.forEach { $0.promise.fail(error) }
        case .none:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(unwrapInboundIn(data))
            while let reply = try reader.next() {
                if let onPush, Self.isPubSubMessage(reply) {
                    onPush(reply)
                    continue
                }
                handle(stateMachine.replyReceived(reply), context: context)
            }
        } catch {
            close(context: context, cause: error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context, cause: error)
    }

    private func handle(
        _ action: RedisConnectionStateMachine<Pending>.ReplyAction, context: ChannelHandlerContext
    ) {
        switch action {
        case .none:
            break
        case .handshakeCompleted(let held):
            readyPromise.succeed(())
            writeReleased(held, context: context)
        case .handshakeFailed(let error, let held):
            closeCause = error
            held.forEach { $0.promise.fail(error) }
            readyPromise.fail(error)
            context.close(promise: nil)
        case .succeed(let pending, let reply):
            pending.promise.succeed(reply)
        case .succeedAndClose(let pending, let reply):
            pending.promise.succeed(reply)
            context.close(promise: nil)
        case .unexpectedReply(let error):
            close(context: context, cause: error)
        }
    }

    private func checkDeadlines(context: ChannelHandlerContext) {
        guard
            case .timedOut(let expired, let others, let timeout, let connectionError, let duringHandshake) =
                stateMachine.checkDeadlines(now: context.eventLoop.now)
        else { return }
        logger.info(
            "redis command timed out; recycling the connection",
            metadata: ["redis.expired": "\(expired.count)", "redis.handshake": "\(duringHandshake)"])
        closeCause = timeout
        expired.forEach { $0.promise.fail(timeout) }
        others.forEach { $0.promise.fail(connectionError) }
        readyPromise.fail(timeout)
        context.close(promise: nil)
    }

    private func writeReleased(_ held: [Pending], context: ChannelHandlerContext) {
        guard !held.isEmpty else { return }
        for pending in held {
            context.write(wrapOutboundOut(pending.bytes), promise: nil)
        }
        context.flush()
    }

    private func close(context: ChannelHandlerContext, cause: any Error) {
        let error = Self.redisError(cause)
        if closeCause == nil { closeCause = error }
        failEverything(cause: error)
        context.close(promise: nil)
    }

    private func failEverything(cause: RedisError?) {
        let (requests, error) = stateMachine.channelClosed(cause: cause)
        requests.forEach { $0.promise.fail(error) }
        readyPromise.fail(error)
        closedPromise.succeed(closeCause ?? error)
    }

    /// Whether `reply` is a message of a subscribed connection (`message`, `pmessage`) rather than the reply to
    /// a command: those arrive unasked.
    static func isPubSubMessage(_ reply: RedisReply) -> Bool {
        guard let elements = reply.array, let kind = elements.first?.string else { return false }
        return kind == "message" || kind == "pmessage"
    }

    /// Maps any error of the pipeline to a ``RedisError`` with the right code.
    static func redisError(_ error: any Error) -> RedisError {
        switch error {
        case let error as RedisError:
            return error
        case NIOSSLError.uncleanShutdown:
            return RedisError(
                code: .connection, message: "the server closed the TLS connection without close_notify",
                cause: error)
        case let error as NIOSSLError:
            return RedisError(code: .tls, message: "TLS failed: \(error)", cause: error)
        case let error as BoringSSLError:
            return RedisError(code: .tls, message: "TLS failed: \(error)", cause: error)
        case let error as NIOSSLExtraError:
            return RedisError(code: .tls, message: "TLS failed: \(error)", cause: error)
        default:
            return RedisError(code: .connection, message: "connection error: \(error)", cause: error)
        }
    }
}
