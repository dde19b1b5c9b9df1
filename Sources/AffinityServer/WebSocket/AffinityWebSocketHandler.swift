import AffinityProtocol
import NIOCore
import NIOWebSocket

/// The server side of one upgraded WebSocket, as the one NIO handler after the upgrade: cuts the
/// bytes read into frames (``WebSocketFrameReader``), joins data frames into messages (with the
/// size limit) for the session, answers pings, pings the peer and drops it when a ping goes
/// unanswered, writes the frames the session sends, and runs the close handshake.
///
/// Everything per connection lives in the channel: no task, no `AsyncStream`, only event-loop
/// timers (the next ping, a scheduled callback to this handler that allocates nothing; the close
/// grace once a close was sent). Complete messages go to the
/// session through an ``InboundMessageQueue``. What the session sends, ``WebSocketConnection``
/// writes as encoded frames (one buffer per flush) through this handler, and its close as a
/// ``WebSocketCloseRequest`` event, so that a close from either side is seen here.
///
/// The framing is this handler's own rather than NIO's `WebSocketFrameDecoder` and encoder: a
/// read's frames are cut in the read's buffer and handled without a pipeline hop or a boxed
/// `WebSocketFrame` each, and an idle connection keeps no decoder buffer (issue #16).
///
/// Reads are sized by an ``InboundReadSizer`` to about one message each, one read per
/// event-loop turn (see ``MessageSizedRecvAllocator``): this handler tells it how many messages
/// each read completed.
///
/// An unmasked frame, reserved bits, an unknown opcode or a broken fragment sequence is a protocol
/// error: close 1002, then the peer's close is awaited. A frame larger than the frame limit is
/// answered with close 1009, a fragmented or long control frame with 1002, and the connection is
/// dropped: the byte stream cannot be followed past such a frame.
final class AffinityWebSocketHandler: ChannelDuplexHandler, RemovableChannelHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long to wait for the peer to answer our close before dropping the TCP connection.
    static let closeGrace: TimeAmount = .seconds(3)

    private enum CloseState {
        case open
        /// We sent a close; waiting for the peer's (or the grace timer).
        case closeSent
        /// The peer sent a close; ours answers it, then the channel closes.
        case closeReceived
        case closed
    }

    private let connection: WebSocketConnection
    private let inbox: InboundMessageQueue
    private let readSizer: NIOLoopBoundBox<InboundReadSizer>
    private var reader: WebSocketFrameReader
    private var assembler: MessageAssembler
    private let pingInterval: TimeAmount
    private let closeGrace: TimeAmount
    private var closeState = CloseState.open
    /// The payload of the last ping, until its pong arrives.
    private var unansweredPing: UInt64?
    private var pingCount: UInt64 = 0
    /// The next ping (``handleScheduledCallback(eventLoop:)``).
    private var pingTimer: NIOScheduledCallback?
    /// This handler's context while it is in the pipeline (for the ping callback).
    private var context: ChannelHandlerContext?
    private var graceTimer: Scheduled<Void>?

    init(
        connection: WebSocketConnection, inbox: InboundMessageQueue, readSizer: NIOLoopBoundBox<InboundReadSizer>,
        messageLimit: Int, frameLimit: Int, pingInterval: TimeAmount, closeGrace: TimeAmount = closeGrace
    ) {
        self.connection = connection
        self.inbox = inbox
        self.readSizer = readSizer
        self.reader = WebSocketFrameReader(maxFrameSize: frameLimit)
        self.assembler = MessageAssembler(limit: messageLimit)
        self.pingInterval = pingInterval
        self.closeGrace = closeGrace
    }

    // MARK: - Life cycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { schedulePing(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        schedulePing(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        end()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    private func end() {
        closeState = .closed
        pingTimer?.cancel()
        pingTimer = nil
        graceTimer?.cancel()
        graceTimer = nil
        connection.finishOutbound()
        inbox.finish()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            // the HTTP server shuts down; the drain coordinator normally closed this connection already
            connection.drain()
        case let channelEvent as ChannelEvent where channelEvent == .inputClosed:
            // the peer shut its side down: no close frame can come any more
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: - Reading

    func read(context: ChannelHandlerContext) {
        // back-pressure: the inbox calls `channel.read()` again once the session caught up
        guard !inbox.shouldPauseReading() else { return }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.append(unwrapInboundIn(data))
        while true {
            switch reader.next() {
            case .frame(let frame):
                handle(frame, context: context)
            case .needMoreData:
                return
            case .failed(let failure):
                return framingFailed(failure, context: context)
            }
        }
    }

    private func handle(_ frame: ReadFrame, context: ChannelHandlerContext) {
        switch closeState {
        case .open, .closeSent: break
        // the peer's close ended its side: nothing it sends after it counts
        case .closeReceived, .closed: return
        }
        // RFC 6455 section 5.1: every frame from a client is masked; a server closes on one that is not
        guard frame.maskKey != nil else { return protocolError(context: context) }
        switch frame.opcode {
        case .connectionClose:
            receivedClose(frame, context: context)
        case .ping:
            if case .open = closeState {
                let pong = WebSocketFrameWriter.frame(
                    opcode: .pong, payload: frame.unmaskedPayload, allocator: context.channel.allocator)
                context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            }
        case .pong:
            var data = frame.unmaskedPayload
            if let expected = unansweredPing, data.readableBytes == 8, data.readInteger(as: UInt64.self) == expected {
                unansweredPing = nil
            }
        case .text, .binary, .continuation:
            guard frame.reservedBits == 0 else { return protocolError(context: context) }
            switch assembler.append(
                opcode: frame.opcode, fin: frame.fin, maskKey: frame.maskKey, data: frame.payload)
            {
            case .incomplete: break
            case .message(let message):
                readSizer.value.messageCompleted()
                inbox.push(InboundMessage(message))
            case .protocolError: protocolError(context: context)
            }
        default:
            protocolError(context: context)
        }
    }

    /// A frame over the limit (1009) or a broken control frame (1002): answered, then dropped.
    private func framingFailed(_ failure: WebSocketFrameReader.Failure, context: ChannelHandlerContext) {
        assembler.reset()
        guard case .open = closeState else {
            context.close(promise: nil)
            return
        }
        switch failure {
        case .frameTooLarge:
            sendClose(code: 1009, reason: "frame too large", thenDrop: true, context: context)
        case .invalidControlFrame:
            sendClose(code: 1002, reason: "protocol error", thenDrop: true, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let messagesPerRead: Int
        switch connection.role {
        case .client:
            messagesPerRead = InboundReadSizer.clientMessagesPerRead
        case .worker where inbox.isConsumerIdle:
            // every outcome of the read was handled on the event loop (each pushed to a local subscriber or
            // queued behind its key), none waits for the session: such outcomes are as cheap as a client's acks
            messagesPerRead = InboundReadSizer.clientMessagesPerRead
        case .worker, .none:
            messagesPerRead = InboundReadSizer.messagesPerRead
        }
        readSizer.value.readCompleted(messagesPerRead: messagesPerRead)
        context.fireChannelReadComplete()
    }

    // MARK: - Ping

    private func schedulePing(context: ChannelHandlerContext) {
        guard pingTimer == nil, pingInterval > .zero else { return }
        // fails only when the event loop shuts down, and then the channel closes with it
        pingTimer = try? context.eventLoop.assumeIsolated().scheduleCallback(in: pingInterval, handler: self)
    }

    /// The ping timer fired (on the event loop).
    func handleScheduledCallback(eventLoop: some EventLoop) {
        pingTimer = nil
        guard let context else { return }
        pingDue(context: context)
    }

    private func pingDue(context: ChannelHandlerContext) {
        guard case .open = closeState else { return }
        if unansweredPing != nil {
            // the peer did not answer the previous ping: it is gone or stuck
            sendClose(code: 1001, reason: "ping timeout", thenDrop: true, context: context)
            return
        }
        pingCount &+= 1
        unansweredPing = pingCount
        var ping = context.channel.allocator.buffer(capacity: 10)
        WebSocketFrameWriter.writeHeader(opcode: .ping, payloadLength: 8, to: &ping)
        ping.writeInteger(pingCount)
        context.writeAndFlush(wrapOutboundOut(ping), promise: nil)
        schedulePing(context: context)
    }

    // MARK: - Close handshake

    private func receivedClose(_ frame: ReadFrame, context: ChannelHandlerContext) {
        switch closeState {
        case .open:
            inbox.finish()
            sendClose(code: Self.replyCode(to: frame.unmaskedPayload), reason: "", thenDrop: true, context: context)
            closeState = .closeReceived
        case .closeSent:
            closeState = .closed
            inbox.finish()
            context.close(promise: nil)
        case .closeReceived, .closed:
            break
        }
    }

    private func protocolError(context: ChannelHandlerContext) {
        assembler.reset()
        guard case .open = closeState else { return }
        sendClose(code: 1002, reason: "protocol error", thenDrop: false, context: context)
    }

    /// Writes a close frame now, ahead of anything the session still has queued, and stops the
    /// session's output. `thenDrop` closes the channel once it is written; otherwise the peer's
    /// close is awaited (at most ``closeGrace``).
    private func sendClose(code: UInt16, reason: String, thenDrop: Bool, context: ChannelHandlerContext) {
        connection.finishOutbound()
        closeState = .closeSent
        startGraceTimer(context: context)
        let frame = WebSocketFrameWriter.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)
        if thenDrop {
            context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
    }

    /// The session's close (``WebSocketConnection``), after the frames it wrote before: starts the close
    /// handshake.
    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let close = event as? WebSocketCloseRequest else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        guard case .open = closeState else {
            // a close was already sent: never a second one
            promise?.fail(ChannelError.outputClosed)
            return
        }
        closeState = .closeSent
        startGraceTimer(context: context)
        let frame = WebSocketFrameWriter.closeFrame(
            code: close.code, reason: close.reason, allocator: context.channel.allocator)
        context.write(wrapOutboundOut(frame), promise: promise)
    }

    private func startGraceTimer(context: ChannelHandlerContext) {
        guard graceTimer == nil else { return }
        graceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: closeGrace) {
            self.graceTimer = nil
            context.close(promise: nil)
        }
    }

    /// The code answering a peer's close: 1000, or 1002 when its payload is not a valid close.
    static func replyCode(to payload: ByteBuffer) -> UInt16 {
        var payload = payload
        guard payload.readableBytes > 0 else { return 1000 }
        guard let code = payload.readInteger(as: UInt16.self) else { return 1002 }
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: return 1000
        default: return 1002
        }
    }
}

/// The session's close of its WebSocket, as an outbound event to ``AffinityWebSocketHandler``, which
/// writes the close frame (unless one was sent already) and waits for the peer's.
struct WebSocketCloseRequest: Sendable {
    var code: UInt16
    var reason: String
}
