import NIOCore
import NIOEmbedded
import NIOWebSocket

// libFuzzer target: the WebSocket frame layer as the server runs it. The bytes, split into reads,
// go through WebSocketFrameReader (the server's framing, with the server's frame limit: message
// limit plus slack), then the server's frame rules and MessageAssembler. NIO's WebSocketFrameDecoder
// reads the same reads as the reference.
//
// The first input byte picks the message limit, the second how the rest is split into reads.
// Invariants: no crash; the reader cuts the frames NIO's decoder decodes (header bits, mask key,
// payload) and fails where it throws; a text message is never longer than the limit and equals the
// unmasked payloads of its frames; an oversized message keeps at most its prefix; nothing is read
// after a frame the server closes on (unmasked, reserved bits, unknown opcode, protocol error).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocketMessages(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 2 else { return 0 }
    let limit = 16 + Int(data[0]) * 8
    let frameLimit = limit + 64
    let prefix = 24
    let chunk = Int(data[1] % 64) + 1
    let input = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))

    // the server's framing
    var reader = WebSocketFrameReader(maxFrameSize: frameLimit)
    var frames: [ReadFrame] = []
    var failed = false
    reads: for start in stride(from: 0, to: input.count, by: chunk) {
        reader.append(ByteBuffer(bytes: input[start..<min(start + chunk, input.count)]))
        while true {
            switch reader.next() {
            case .frame(let frame): frames.append(frame)
            case .needMoreData: continue reads
            case .failed: failed = true; break reads
            }
        }
    }

    // NIO's decoder on the same reads
    let collector = FrameCollector()
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: frameLimit)), collector,
        ])
    } catch {
        fatalError("could not set up the pipeline: \(error)")
    }
    var nioFailed = false
    for start in stride(from: 0, to: input.count, by: chunk) {
        guard (try? channel.writeInbound(ByteBuffer(bytes: input[start..<min(start + chunk, input.count)]))) != nil
        else {
            nioFailed = true
            break
        }
    }
    _ = try? channel.finish()
    guard failed == nioFailed, frames.count == collector.frames.count else {
        fatalError(
            "the reader cut \(frames.count) frames (failed: \(failed)), NIO \(collector.frames.count) (\(nioFailed))")
    }
    for (frame, reference) in zip(frames, collector.frames) {
        guard frame.fin == reference.fin, frame.opcode == reference.opcode,
            frame.reservedBits == reference.reservedBits.rawValue, frame.maskKey == reference.maskKey.map(WebSocketMask.init),
            frame.unmaskedPayload == reference.unmaskedData
        else { fatalError("the reader's frame differs from NIO's") }
    }

    // the server's frame rules (AffinityWebSocketHandler.handle) and the assembler
    var assembler = MessageAssembler(limit: limit, oversizedPrefix: prefix)
    var expected: [UInt8] = []
    frames: for frame in frames {
        // the server closes with 1002 on these
        guard frame.maskKey != nil else { break }
        switch frame.opcode {
        case .text, .binary, .continuation: guard frame.reservedBits == 0 else { break frames }
        case .ping, .pong, .connectionClose: continue frames
        default: break frames
        }
        if frame.opcode != .continuation { expected = [] }
        expected += frame.unmaskedPayload.readableBytesView
        switch assembler.append(opcode: frame.opcode, fin: frame.fin, maskKey: frame.maskKey, data: frame.payload) {
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

/// Keeps every frame NIO's decoder produced.
private final class FrameCollector: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    var frames: [WebSocketFrame] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }
}
