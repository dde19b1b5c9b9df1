import AffinityProtocol
import NIOCore
import NIOWebSocket
import Synchronization

extension WebSocketTransport {
    /// Sends on an established connection; every frame is masked, as a client's must be.
    struct Writer: Sendable {
        fileprivate let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
        fileprivate let state: SessionState

        /// Sends one text message.
        func send(text: [UInt8]) async throws {
            try await outbound.write(Self.frame(.text, ByteBuffer(bytes: text)))
        }

        /// Starts the close handshake (once); the connection ends when the peer answers or goes away.
        func close(code: WebSocketErrorCode, reason: String?) async throws {
            guard state.markCloseSent() else { return }
            var data = ByteBuffer()
            data.write(webSocketErrorCode: code)
            if let reason { data.writeString(reason) }
            try await outbound.write(Self.frame(.connectionClose, data))
        }

        fileprivate static func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
            WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
        }
    }

    /// Whether a close was sent and whether the last ping was answered.
    fileprivate final class SessionState: Sendable {
        private struct Values {
            var closeSent = false
            var pingOutstanding = false
        }

        private let values = Mutex(Values())

        /// True the first time.
        func markCloseSent() -> Bool {
            values.withLock { values in
                defer { values.closeSent = true }
                return !values.closeSent
            }
        }

        var closeSent: Bool { values.withLock { $0.closeSent } }

        /// Records a ping about to be sent; false when the previous one is still unanswered.
        func pingSent() -> Bool {
            values.withLock { values in
                defer { values.pingOutstanding = true }
                return !values.pingOutstanding
            }
        }

        func pongReceived() {
            values.withLock { $0.pingOutstanding = false }
        }
    }

    /// Runs `body` on an upgraded connection while a reader task handles control frames and, with a ping
    /// interval, a pinger closes the connection when a ping goes unanswered.
    func session(
        _ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>,
        _ body: (_ inbound: AsyncThrowingStream<Message, any Error>, _ outbound: Writer) async throws -> Void
    ) async throws {
        let pingInterval = self.pingInterval
        try await channel.executeThenClose { inbound, outbound in
            let state = SessionState()
            let writer = Writer(outbound: outbound, state: state)
            let (messages, continuation) = AsyncThrowingStream.makeStream(of: Message.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await Self.read(inbound, into: continuation, writer: writer, state: state)
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                if let pingInterval {
                    group.addTask {
                        while true {
                            try await Task.sleep(for: pingInterval)
                            guard state.pingSent() else {
                                continuation.finish(
                                    throwing: AffinityClientError(
                                        code: .timeout, message: "the service did not answer a ping within \(pingInterval)"
                                    ))
                                return
                            }
                            try await outbound.write(Writer.frame(.ping, ByteBuffer()))
                        }
                    }
                }
                defer {
                    group.cancelAll()
                    channel.channel.close(promise: nil)
                }
                try await body(messages, writer)
            }
        }
    }

    private static func read(
        _ inbound: NIOAsyncChannelInboundStream<WebSocketFrame>,
        into messages: AsyncThrowingStream<Message, any Error>.Continuation, writer: Writer, state: SessionState
    ) async throws {
        for try await frame in inbound {
            switch frame.opcode {
            case .text:
                messages.yield(.text(Array(buffer: frame.unmaskedData)))
            case .binary:
                messages.yield(.binary)
            case .ping:
                try await writer.outbound.write(Writer.frame(.pong, frame.unmaskedData))
            case .pong:
                state.pongReceived()
            case .connectionClose:
                // answer a close the peer started; ours is already out when we started it
                if !state.closeSent {
                    var data = frame.unmaskedData
                    let code = data.readWebSocketErrorCode() ?? .normalClosure
                    try? await writer.close(code: code == .unknown(1005) ? .normalClosure : code, reason: nil)
                }
                messages.finish()
                return
            default:
                continue
            }
        }
        messages.finish()
    }
}
