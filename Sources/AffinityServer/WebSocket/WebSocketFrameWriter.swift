import NIOCore
import NIOWebSocket

/// Writes the frames a server sends (RFC 6455 section 5.2): final, unmasked.
enum WebSocketFrameWriter {
    /// The bytes of a frame's header for a payload of `length` bytes.
    static func headerSize(payloadLength length: Int) -> Int {
        length <= 125 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// Writes a frame's header; its `length` bytes of payload follow.
    static func writeHeader(opcode: WebSocketOpcode, payloadLength length: Int, to buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | UInt8(webSocketOpcode: opcode))
        if length <= 125 {
            buffer.writeInteger(UInt8(length))
        } else if length <= 0xFFFF {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }

    /// One frame with `payload`.
    static func frame(
        opcode: WebSocketOpcode, payload: ByteBuffer, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var payload = payload
        var buffer = allocator.buffer(
            capacity: headerSize(payloadLength: payload.readableBytes) + payload.readableBytes)
        writeHeader(opcode: opcode, payloadLength: payload.readableBytes, to: &buffer)
        buffer.writeBuffer(&payload)
        return buffer
    }

    /// A close frame with `code` and `reason` (RFC 6455 section 5.5.1), the reason cut to the 123 bytes
    /// a control frame has room for.
    static func closeFrame(code: UInt16, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let reason = reason.utf8.prefix(123)
        let length = 2 + reason.count
        var buffer = allocator.buffer(capacity: headerSize(payloadLength: length) + length)
        writeHeader(opcode: .connectionClose, payloadLength: length, to: &buffer)
        buffer.writeInteger(code)
        buffer.writeBytes(reason)
        return buffer
    }
}
