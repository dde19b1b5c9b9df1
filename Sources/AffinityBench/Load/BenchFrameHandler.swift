import NIOCore
import NIOWebSocket

/// Reads the WebSocket frames of one benchmark connection on its event loop: text messages go to the inbox
/// (outcomes are acknowledged at once, as a real client does), pings are answered, a close fails the inbox.
final class BenchFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let inbox: BenchInbox
    private var fragments: ByteBuffer?

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
                fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
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
                fin: true, opcode: .text, maskKey: .random(), data: context.channel.allocator.buffer(bytes: reply))
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
    }
}
