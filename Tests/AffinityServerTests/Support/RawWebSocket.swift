import NIOCore
import NIOPosix
import NIOWebSocket
import Synchronization
import Testing

/// A frame the server sent, as read off the wire.
struct RawFrame: Sendable, Equatable {
    var fin: Bool
    var opcode: UInt8
    var payload: [UInt8]

    /// The close code of a close frame.
    var closeCode: Int? {
        guard opcode == 0x8, payload.count >= 2 else { return nil }
        return Int(payload[0]) << 8 | Int(payload[1])
    }

    /// The close reason of a close frame.
    var closeReason: String {
        String(decoding: payload.dropFirst(2), as: UTF8.self)
    }

    var text: String { String(decoding: payload, as: UTF8.self) }
}

/// A WebSocket client that writes hand-made frames over a plain TCP connection and parses what
/// the server sends, to test the frame layer (fragments, control frames, the close handshake).
struct RawWebSocket: Sendable {
    private struct State {
        /// Bytes not parsed yet.
        var bytes: [UInt8] = []
        /// The HTTP response head, once complete.
        var head: String?
        var frames: [RawFrame] = []
        var closed = false
    }

    private final class Received: Sendable {
        let state = Mutex(State())
    }

    /// Parses what the server sends on the event loop; with `autoPong`, answers pings there at
    /// once, so that a busy test machine cannot delay the answer past the server's ping interval.
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let received: Received
        let autoPong: Bool
        init(received: Received, autoPong: Bool) {
            self.received = received
            self.autoPong = autoPong
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            let pings = received.state.withLock { state -> [RawFrame] in
                state.bytes += buffer.readableBytesView
                if state.head == nil {
                    let bytes = state.bytes
                    guard bytes.count >= 4,
                        let end = (3..<bytes.count).first(where: { bytes[$0 - 3...$0] == [13, 10, 13, 10] })
                    else { return [] }
                    state.head = String(decoding: bytes[...end], as: UTF8.self)
                    state.bytes.removeFirst(end + 1)
                }
                var pings: [RawFrame] = []
                while let (frame, length) = RawWebSocket.parse(state.bytes) {
                    state.bytes.removeFirst(length)
                    state.frames.append(frame)
                    if frame.opcode == 0x9 { pings.append(frame) }
                }
                return pings
            }
            guard autoPong else { return }
            for ping in pings {
                let pong = RawWebSocket.frame(opcode: 0xA, payload: ping.payload)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: pong)), promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            received.state.withLock { $0.closed = true }
        }
    }

    private let channel: any Channel
    private let received: Received

    static let upgradeRequest =
        "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    /// Connects, runs `body`, closes. With `upgrade`, the handshake is done first (and checked);
    /// with `autoPong`, pings are answered on the event loop (and still reported by ``nextFrame(timeout:)``).
    static func with<T: Sendable>(
        port: Int, upgrade: Bool = true, autoPong: Bool = false, _ body: @Sendable (RawWebSocket) async throws -> T
    ) async throws -> T {
        let received = Received()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received, autoPong: autoPong))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let socket = RawWebSocket(channel: channel, received: received)
        do {
            if upgrade {
                try await socket.write(Array(upgradeRequest.utf8))
                let head = try await socket.readHTTPHead()
                guard head.hasPrefix("HTTP/1.1 101") else { throw TestFailure("no upgrade: \(head)") }
            }
            let result = try await body(socket)
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// A client frame: masked as RFC 6455 requires, or (`masked: false`) as no client may send it.
    static func frame(
        opcode: UInt8, fin: Bool = true, rsv1: Bool = false, masked: Bool = true, payload: [UInt8]
    ) -> [UInt8] {
        let maskBit: UInt8 = masked ? 0x80 : 0
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode]
        if payload.count < 126 {
            bytes.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(maskBit | 127)
            bytes += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        guard masked else { return bytes + payload }
        let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        bytes += mask
        bytes += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        return bytes
    }

    func send(
        opcode: UInt8, fin: Bool = true, rsv1: Bool = false, masked: Bool = true, _ payload: [UInt8]
    ) async throws {
        try await write(Self.frame(opcode: opcode, fin: fin, rsv1: rsv1, masked: masked, payload: payload))
    }

    func sendText(_ text: String, fin: Bool = true) async throws {
        try await send(opcode: 0x1, fin: fin, Array(text.utf8))
    }

    func sendClose(code: UInt16) async throws {
        try await send(opcode: 0x8, [UInt8(code >> 8), UInt8(code & 0xFF)])
    }

    /// The next server frame; nil when the server closed the TCP connection first.
    func nextFrame(timeout: Duration = .seconds(5)) async throws -> RawFrame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (frame, closed) = received.state.withLock { state -> (RawFrame?, Bool) in
                guard !state.frames.isEmpty else { return (nil, state.closed) }
                return (state.frames.removeFirst(), false)
            }
            if let frame { return frame }
            if closed { return nil }
            guard ContinuousClock.now < deadline else { throw TestFailure("no frame within \(timeout)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits until the server closed the TCP connection; fails if it sends more frames or stays open.
    func expectTCPClose(within timeout: Duration = .seconds(10)) async throws {
        if let frame = try await nextFrame(timeout: timeout) {
            throw TestFailure("expected the connection to close, got \(frame)")
        }
    }

    /// Waits until the server closed the TCP connection, skipping whatever it sent before (such as
    /// the JSON body of a refused upgrade); fails if it stays open.
    func waitForTCPClose(within timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await nextFrame(timeout: max(.milliseconds(1), deadline - ContinuousClock.now)) != nil {}
    }

    /// The HTTP response head (through the empty line).
    func readHTTPHead(within timeout: Duration = .seconds(5)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let head = received.state.withLock({ $0.head }) { return head }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("no HTTP response")
    }

    fileprivate static func parse(_ bytes: [UInt8]) -> (RawFrame, Int)? {
        guard bytes.count >= 2 else { return nil }
        var length = Int(bytes[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard bytes.count >= offset + length else { return nil }
        let frame = RawFrame(
            fin: bytes[0] & 0x80 != 0, opcode: bytes[0] & 0x0F, payload: Array(bytes[offset..<offset + length]))
        return (frame, offset + length)
    }
}
