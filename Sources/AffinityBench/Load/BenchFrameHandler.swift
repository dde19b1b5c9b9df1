import NIOCore
import NIOWebSocket

/// Reads the WebSocket frames of one benchmark connection on its event loop: text messages go to the inbox
/// (outcomes are acknowledged at once, as a real client does), pings are answered, a close fails the inbox.
///
/// The acks of one read leave in one write, at the end of the read: the load generator has to outrun the
/// replica it measures, so it does not pay a system call per ack.
final class BenchFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let inbox: BenchInbox
    private var fragments: ByteBuffer?
    /// Acks written in this read and not flushed yet.
    private var unflushed = false
    private var masks = WebSocketMaskGenerator()

    init(inbox: BenchInbox) {
        self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            if frame.fin {
                deliver(frame.unmaskedData, context: context)
            } else {
                fragments = frame.unmaskedData
            }
        case .continuation:
            guard var buffer = fragments else { return }
            var data = frame.unmaskedData
            buffer.writeBuffer(&data)
            if frame.fin {
                fragments = nil
                deliver(buffer, context: context)
            } else {
                fragments = buffer
            }
        case .ping:
            let pong = WebSocketFrame(
                fin: true, opcode: .pong, maskKey: masks.next(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self).map { "\($0)" } ?? "none"
            let reason = data.readString(length: data.readableBytes) ?? ""
            inbox.close(BenchError(.connection, "the server closed the connection (code \(code) \(reason))"))
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.close(BenchError(.connection, "the connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inbox.close(BenchError(.connection, "connection error", cause: ErrorText("\(error)")))
        context.close(promise: nil)
    }

    private func deliver(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        let bytes = Array(buffer.readableBytesView)
        if let reply = inbox.receive(bytes, now: .now) {
            let frame = WebSocketFrame(
                fin: true, opcode: .text, maskKey: masks.next(), data: context.channel.allocator.buffer(bytes: reply))
            context.write(wrapOutboundOut(frame), promise: nil)
            unflushed = true
        }
    }
}

/// Masking keys for the load generator's frames (RFC 6455 section 5.3): a different key per frame from a
/// xorshift generator, instead of `WebSocketMaskingKey.random()`, which asks the kernel for each one.
struct WebSocketMaskGenerator: RandomNumberGenerator {
    private var state = UInt64.random(in: 1...UInt64.max)

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func next() -> WebSocketMaskingKey {
        .random(using: &self)
    }
}
