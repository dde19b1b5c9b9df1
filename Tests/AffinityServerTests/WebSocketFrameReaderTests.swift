import AffinityTestSupport
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import AffinityServer

/// ``WebSocketFrameReader`` and ``WebSocketFrameWriter``, the server's own frame layer (RFC 6455
/// section 5.2), without I/O; NIO's `WebSocketFrameDecoder` is the reference for what frames a byte
/// stream holds.
@Suite("WebSocket frame reader and writer")
struct WebSocketFrameReaderTests {
    let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

    /// A client's frame (``RawWebSocket/frame(opcode:fin:rsv1:masked:payload:)``, masked with `mask`): `first` is
    /// the whole first byte (FIN, RSV1, opcode).
    func clientFrame(first: UInt8, payload: [UInt8], masked: Bool = true) -> [UInt8] {
        precondition(first & 0x30 == 0, "RawWebSocket sets RSV1 only")
        return RawWebSocket.frame(
            opcode: first & 0x0F, fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, masked: masked, payload: payload)
    }

    func payload(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }

    /// Feeds `bytes` in reads of `chunk` bytes and takes every frame, until the reader needs more or failed.
    func read(
        _ bytes: [UInt8], chunk: Int, maxFrameSize: Int = 1 << 20
    ) -> (frames: [ReadFrame], failure: WebSocketFrameReader.Failure?, pending: Int) {
        var reader = WebSocketFrameReader(maxFrameSize: maxFrameSize)
        var frames: [ReadFrame] = []
        for start in stride(from: 0, to: bytes.count, by: chunk) {
            reader.append(ByteBuffer(bytes: bytes[start..<min(start + chunk, bytes.count)]))
            frames: while true {
                switch reader.next() {
                case .frame(let frame): frames.append(frame)
                case .needMoreData: break frames
                case .failed(let failure): return (frames, failure, reader.pendingBytes)
                }
            }
        }
        return (frames, nil, reader.pendingBytes)
    }

    @Test(arguments: [0, 1, 125, 126, 127, 65535, 65536, 70000])
    func everyLengthEncodingIsCutWholeOrByteByByte(length: Int) {
        let sent = payload(length)
        let bytes = clientFrame(first: 0x81, payload: sent) + clientFrame(first: 0x89, payload: [1, 2, 3])
        for chunk in [1, 3, 7, bytes.count] where chunk != 1 || length < 1000 {
            let (frames, failure, pending) = read(bytes, chunk: chunk)
            #expect(failure == nil)
            #expect(pending == 0, "nothing kept once every frame was taken")
            #expect(frames.count == 2)
            #expect(frames.first?.opcode == .text)
            #expect(frames.first?.fin == true)
            #expect(frames.first?.maskKey == WebSocketMaskingKey(mask).map(WebSocketMask.init))
            #expect(Array(frames.first?.unmaskedPayload.readableBytesView ?? []) == sent)
            #expect(frames.last?.opcode == .ping)
            #expect(Array(frames.last?.unmaskedPayload.readableBytesView ?? []) == [1, 2, 3])
        }
    }

    @Test func aFrameCutByTheReadIsKeptUntilItsRestArrives() {
        var reader = WebSocketFrameReader(maxFrameSize: 1024)
        let bytes = clientFrame(first: 0x81, payload: payload(40))
        reader.append(ByteBuffer(bytes: bytes[0..<20]))
        guard case .needMoreData = reader.next() else { Issue.record("a frame from half its bytes"); return }
        #expect(reader.pendingBytes == 20)
        reader.append(ByteBuffer(bytes: bytes[20...]))
        guard case .frame(let frame) = reader.next() else { Issue.record("no frame from all its bytes"); return }
        #expect(Array(frame.unmaskedPayload.readableBytesView) == payload(40))
        #expect(reader.pendingBytes == 0)
        guard case .needMoreData = reader.next() else { Issue.record("a frame from no bytes"); return }
    }

    @Test func headerBitsAreReportedAsSent() {
        // FIN clear, RSV1 set, unknown opcode 0x3; then an unmasked binary frame: the handler's to refuse
        let bytes = clientFrame(first: 0x43, payload: [9]) + clientFrame(first: 0x82, payload: [8], masked: false)
        let (frames, failure, _) = read(bytes, chunk: bytes.count)
        #expect(failure == nil)
        #expect(frames.map(\.fin) == [false, true])
        #expect(frames.map(\.reservedBits) == [0x40, 0])
        #expect(frames.map(\.opcode) == [WebSocketOpcode(encodedWebSocketOpcode: 0x3)!, .binary])
        #expect(frames.last?.maskKey == nil)
        #expect(Array(frames.last?.unmaskedPayload.readableBytesView ?? []) == [8])
    }

    @Test func aFrameOverTheLimitFailsOnceItsLengthIsKnown() {
        let bytes = clientFrame(first: 0x81, payload: [1]) + clientFrame(first: 0x81, payload: payload(1025))
        // only the header of the large frame arrives: the reader fails before its payload is read
        let (frames, failure, pending) = read(Array(bytes[0..<(7 + 4)]), chunk: 64, maxFrameSize: 1024)
        #expect(frames.count == 1)
        #expect(failure == .frameTooLarge)
        #expect(pending == 0, "a failed reader keeps nothing")
        // a 64-bit length with its top bit set is too large, not negative
        let huge: [UInt8] = [0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0] + mask
        #expect(read(huge, chunk: huge.count).failure == .frameTooLarge)
    }

    @Test func aFailedReaderReadsNothingMore() {
        var reader = WebSocketFrameReader(maxFrameSize: 16)
        reader.append(ByteBuffer(bytes: clientFrame(first: 0x81, payload: payload(17))))
        guard case .failed(.frameTooLarge) = reader.next() else { Issue.record("no failure"); return }
        reader.append(ByteBuffer(bytes: clientFrame(first: 0x81, payload: [1])))
        guard case .failed(.frameTooLarge) = reader.next() else { Issue.record("read after a failure"); return }
        #expect(reader.pendingBytes == 0)
    }

    @Test func controlFramesMustBeFinalAndShort() {
        // a fragmented ping, a 126-byte close (extended length), a 126-byte pong
        for bytes in [
            clientFrame(first: 0x09, payload: [1]), clientFrame(first: 0x88, payload: payload(126)),
            clientFrame(first: 0x8A, payload: payload(126)),
        ] {
            #expect(read(bytes, chunk: bytes.count).failure == .invalidControlFrame)
        }
        let longest = clientFrame(first: 0x89, payload: payload(125))
        #expect(read(longest, chunk: longest.count).frames.count == 1)
    }

    /// Random streams of valid and invalid frames, in random reads, give the frames (and the failure)
    /// NIO's decoder gives, with the same limit.
    @Test func framesAreThoseNIOsDecoderReads() throws {
        var generator = SeededRandom(seed: 0x5EED)
        for _ in 0..<300 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                let opcodes: [UInt8] = [0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xF]
                let first =
                    (Bool.random(using: &generator) ? 0x80 : 0) | (Bool.random(using: &generator) ? 0x40 : 0)
                    | opcodes.randomElement(using: &generator)!
                let length = [0, 5, 125, 126, 300, 1100].randomElement(using: &generator)!
                bytes += clientFrame(
                    first: first, payload: payload(length), masked: Int.random(in: 0..<8, using: &generator) != 0)
            }
            let chunk = Int.random(in: 1...200, using: &generator)
            let ours = read(bytes, chunk: chunk, maxFrameSize: 1024)

            let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1024)))
            var theirs: [WebSocketFrame] = []
            var theirsFailed = false
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                do {
                    try channel.writeInbound(ByteBuffer(bytes: bytes[start..<min(start + chunk, bytes.count)]))
                } catch {
                    theirsFailed = true
                }
                // (the frames of a read before a failing frame were decoded too)
                while let frame = try channel.readInbound(as: WebSocketFrame.self) { theirs.append(frame) }
                if theirsFailed { break }
            }
            _ = try? channel.finish()
            #expect((ours.failure != nil) == theirsFailed)
            #expect(ours.frames.count == theirs.count)
            for (mine, nio) in zip(ours.frames, theirs) {
                #expect(mine.fin == nio.fin)
                #expect(mine.opcode == nio.opcode)
                #expect(mine.reservedBits == nio.reservedBits.rawValue)
                #expect(mine.maskKey == nio.maskKey.map(WebSocketMask.init))
                #expect(mine.unmaskedPayload == nio.unmaskedData)
            }
        }
    }

    @Test(arguments: [0, 125, 126, 65535, 65536])
    func theWritersFramesReadBack(length: Int) {
        var bytes = ByteBuffer()
        WebSocketFrameWriter.writeHeader(opcode: .text, payloadLength: length, to: &bytes)
        #expect(bytes.readableBytes == WebSocketFrameWriter.headerSize(payloadLength: length))
        bytes.writeBytes(payload(length))
        guard case .frame(let frame) = WebSocketFrameReader.cut(&bytes, maxFrameSize: 1 << 20) else {
            Issue.record("the writer's frame does not read back")
            return
        }
        #expect(frame.fin && frame.opcode == .text && frame.maskKey == nil && frame.reservedBits == 0)
        #expect(Array(frame.payload.readableBytesView) == payload(length))
    }

    @Test func aCloseReasonIsCutToTheRoomOfAControlFrame() {
        var bytes = WebSocketFrameWriter.closeFrame(
            code: 1001, reason: String(repeating: "r", count: 200), allocator: ByteBufferAllocator())
        guard case .frame(let frame) = WebSocketFrameReader.cut(&bytes, maxFrameSize: 1 << 20) else {
            Issue.record("the close frame does not read back")
            return
        }
        var payload = frame.payload
        #expect(frame.opcode == .connectionClose)
        #expect(payload.readableBytes == 125)
        #expect(payload.readInteger(as: UInt16.self) == 1001)
    }

    @Test func theHandshakeAnswersTheRFCsExample() {
        // RFC 6455 section 1.3
        #expect(
            WebSocketUpgrader<Int>.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        // RFC 4648 section 10
        let vectors = [
            "": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=",
            "foobar": "Zm9vYmFy",
        ]
        for (input, output) in vectors {
            #expect(WebSocketUpgrader<Int>.base64(Array(input.utf8)) == output)
        }
    }
}
