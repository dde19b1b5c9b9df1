import NIOCore
import NIOEmbedded
import NIOWebSocket

// libFuzzer target: the WebSocket frame layer as the server runs it, NIO's WebSocketFrameDecoder
// with the server's frame limit (message limit plus slack), then the server's frame rules and
// MessageAssembler.
//
// The first input byte picks the message limit, the second how the rest is split into reads.
// Invariants: no crash; a text message is never longer than the limit and equals the unmasked
// payloads of its frames; an oversized message keeps at most its prefix; nothing is read after a
// frame the server closes on (unmasked, reserved bits, unknown opcode, protocol error).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocketMessages(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 2 else { return 0 }
    let limit = 16 + Int(data[0]) * 8
    let prefix = 24
    let chunk = Int(data[1] % 64) + 1
    let input = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))

    let collector = FrameCollector()
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: limit + 64)), collector,
        ])
    } catch {
        fatalError("could not set up the pipeline: \(error)")
    }
    for start in stride(from: 0, to: input.count, by: chunk) {
        // a frame over the limit or a malformed header makes the decoder throw: the server closes
        guard (try? channel.writeInbound(ByteBuffer(bytes: input[start..<min(start + chunk, input.count)]))) != nil
        else { break }
    }
    _ = try? channel.finish()

    var assembler = MessageAssembler(limit: limit, oversizedPrefix: prefix)
    var expected: [UInt8] = []
    frames: for frame in collector.frames {
        // the server's rules (AffinityWebSocketHandler.channelRead): it closes with 1002 on these
        guard frame.maskKey != nil, frame.reservedBits.isEmpty else { break }
        switch frame.opcode {
        case .text, .binary, .continuation: break
        case .ping, .pong, .connectionClose: continue frames
        default: break frames
        }
        if frame.opcode != .continuation { expected = [] }
        expected += frame.unmaskedData.readableBytesView
        switch assembler.append(opcode: frame.opcode, fin: frame.fin, maskKey: frame.maskKey, data: frame.data) {
        case .incomplete:
            continue
        case .protocolError:
            break frames
        case .message(.text(let bytes)):
            guard bytes.count <= limit else { fatalError("a \(bytes.count)-byte message passed the \(limit) limit") }
            guard bytes == expected else { fatalError("the message differs from its unmasked frames") }
        case .message(.oversized(let kept)):
            guard expected.count > limit, kept.count <= prefix, kept == Array(expected.prefix(kept.count)) else {
                fatalError("an oversized message was mishandled: \(expected.count) bytes, kept \(kept.count)")
            }
        case .message(.binary):
            break
        }
        expected = []
    }
    return 0
}

/// Keeps every frame the decoder produced.
private final class FrameCollector: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    var frames: [WebSocketFrame] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }
}
