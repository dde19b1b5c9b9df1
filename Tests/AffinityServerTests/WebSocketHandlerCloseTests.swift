import AffinityProtocol
import AffinityTestSupport
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import AffinityServer

/// ``AffinityWebSocketHandler``'s close handshake (RFC 6455 section 5.5.1) and protocol errors on an
/// `EmbeddedChannel`: frames in, frames out (as the bytes on the wire: the handler does its own
/// framing), the channel's state, and time advanced by hand.
@Suite("WebSocket close handshake (EmbeddedChannel)")
struct WebSocketHandlerCloseTests {
    static let grace: TimeAmount = .seconds(3)

    /// A channel with the handler and a connection, as after the upgrade.
    func makeChannel() throws -> (EmbeddedChannel, WebSocketConnection, InboundMessageQueue) {
        let channel = EmbeddedChannel()
        let inbox = InboundMessageQueue(channel: channel)
        let connection = WebSocketConnection(
            grantedRoles: [.client], channel: channel, inbox: inbox, outboundBudget: 1 << 20, maxSubscriptions: 10,
            onSlowConsumer: {})
        let sizer = NIOLoopBoundBox(InboundReadSizer(), eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(
            AffinityWebSocketHandler(
                connection: connection, inbox: inbox, readSizer: sizer, messageLimit: 1 << 20, frameLimit: 1 << 21,
                pingInterval: .hours(1), closeGrace: Self.grace))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, connection, inbox)
    }

    /// A frame's bytes as a client sends them: masked (``RawWebSocket/frame(opcode:fin:rsv1:masked:payload:)``).
    func clientFrame(_ opcode: WebSocketOpcode, _ payload: ByteBuffer, masked: Bool = true) -> ByteBuffer {
        ByteBuffer(
            bytes: RawWebSocket.frame(
                opcode: UInt8(webSocketOpcode: opcode), masked: masked, payload: Array(payload.readableBytesView)))
    }

    func closePayload(_ code: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.write(webSocketErrorCode: WebSocketErrorCode(codeNumber: code))
        return buffer
    }

    func closeCode(of frame: WebSocketFrame?) -> Int? {
        guard let frame, frame.opcode == .connectionClose else { return nil }
        var data = frame.unmaskedData
        guard let code = data.readInteger(as: UInt16.self) else { return nil }
        return Int(code)
    }

    /// The frames the handler wrote, decoded from its output bytes.
    func outbound(_ channel: EmbeddedChannel) throws -> [WebSocketFrame] {
        var bytes = ByteBuffer()
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&buffer) }
        var frames: [WebSocketFrame] = []
        while case .frame(let frame) = WebSocketFrameReader.cut(&bytes, maxFrameSize: 1 << 21) {
            #expect(frame.maskKey == nil, "a server's frames are not masked")
            frames.append(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.payload))
        }
        #expect(bytes.readableBytes == 0, "the output is whole frames")
        return frames
    }

    @Test func aPeersCloseIsAnsweredThenTheChannelCloses() async throws {
        let (channel, _, inbox) = try makeChannel()
        try channel.writeInbound(clientFrame(.connectionClose, closePayload(1000)))
        channel.embeddedEventLoop.run()
        let frames = try outbound(channel)
        #expect(frames.count == 1)
        #expect(closeCode(of: frames.first) == 1000)
        #expect(!channel.isActive, "the channel closes once the answer is written")
        #expect(await inbox.next() == nil, "the session sees the end of the connection")
    }

    @Test func aPeersCloseWithAnInvalidCodeIsAnswered1002() throws {
        let (channel, _, _) = try makeChannel()
        try channel.writeInbound(clientFrame(.connectionClose, closePayload(999)))
        channel.embeddedEventLoop.run()
        #expect(closeCode(of: try outbound(channel).first) == 1002)
        #expect(!channel.isActive)
    }

    @Test func ourCloseWaitsForThePeersCloseThenTheChannelCloses() throws {
        let (channel, connection, _) = try makeChannel()
        connection.drain()
        channel.embeddedEventLoop.run()
        let frames = try outbound(channel)
        #expect(frames.map(\.opcode) == [.text, .connectionClose])
        #expect(String(buffer: frames[0].data) == #"{"type":"drain"}"#)
        #expect(closeCode(of: frames.last) == 1001)
        #expect(channel.isActive, "waits for the peer's close")
        // frames the peer still sends before its close are read (the handshake is not finished)
        try channel.writeInbound(clientFrame(.connectionClose, closePayload(1000)))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
        #expect(try outbound(channel).isEmpty, "a close is never answered twice")
    }

    @Test func aPeerThatNeverAnswersOurCloseIsDroppedAfterTheGrace() throws {
        let (channel, connection, _) = try makeChannel()
        connection.close(code: 1001, reason: "draining")
        channel.embeddedEventLoop.run()
        #expect(closeCode(of: try outbound(channel).last) == 1001)
        channel.embeddedEventLoop.advanceTime(by: Self.grace - .milliseconds(1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test func anUnmaskedFrameIsAProtocolError() throws {
        let (channel, _, _) = try makeChannel()
        try channel.writeInbound(clientFrame(.text, ByteBuffer(string: #"{"type":"hello"}"#), masked: false))
        channel.embeddedEventLoop.run()
        #expect(closeCode(of: try outbound(channel).first) == 1002)
        // our close waits for the peer's, within the grace
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: Self.grace)
        #expect(!channel.isActive)
    }

    @Test func aPingIsAnsweredWithItsPayloadAndNothingAfterOurClose() throws {
        let (channel, connection, _) = try makeChannel()
        try channel.writeInbound(clientFrame(.ping, ByteBuffer(string: "p1")))
        let pong = try #require(try outbound(channel).first)
        #expect(pong.opcode == .pong)
        #expect(String(buffer: pong.unmaskedData) == "p1")
        connection.close(code: 1000, reason: "")
        channel.embeddedEventLoop.run()
        _ = try outbound(channel)
        try channel.writeInbound(clientFrame(.ping, ByteBuffer(string: "p2")))
        #expect(try outbound(channel).isEmpty, "no pong once the close was sent")
    }
}
