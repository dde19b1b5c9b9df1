import NIOCore
import NIOWebSocket

/// One WebSocket frame as the peer sent it (RFC 6455 section 5.2): its header, and its payload as a
/// slice of the bytes read, still masked.
struct ReadFrame {
    var fin: Bool
    /// RSV1-3 as they are in the first byte (`0x70` mask); no extension is negotiated, so anything
    /// but 0 on a data frame is a protocol error.
    var reservedBits: UInt8
    var opcode: WebSocketOpcode
    var maskKey: WebSocketMask?
    /// The payload, masked with ``maskKey`` when there is one.
    var payload: ByteBuffer

    /// The payload unmasked (a copy when the frame is masked).
    var unmaskedPayload: ByteBuffer {
        guard let maskKey else { return payload }
        var data = payload
        data.withUnsafeMutableReadableBytes { maskKey.apply(to: $0) }
        return data
    }
}

/// The masking key of a client's frame (RFC 6455 section 5.3): its four bytes as read from the header.
///
/// Our own type rather than NIO's `WebSocketMaskingKey`, whose one public initialiser is generic and not
/// inlinable: called from here, unspecialised, it allocated on every frame.
struct WebSocketMask: Equatable, Sendable {
    /// The four bytes in network order: the first is the most significant.
    var networkValue: UInt32

    init(networkValue: UInt32) {
        self.networkValue = networkValue
    }

    /// The same key as NIO's (its client and the tests mask with NIO's type).
    init(_ key: WebSocketMaskingKey) {
        networkValue = key.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// XORs `bytes`, a frame's payload from its first byte, with the key (masking and unmasking are the
    /// same operation).
    func apply(to bytes: UnsafeMutableRawBufferPointer) {
        withUnsafeBytes(of: networkValue.bigEndian) { key in
            for index in bytes.indices {
                bytes[index] ^= key[index & 3]
            }
        }
    }
}

/// Cuts the bytes a connection reads into WebSocket frames, without I/O.
///
/// The server's frame layer: ``AffinityWebSocketHandler`` appends each read and takes the frames
/// it completed, in the read's own buffer (a frame's payload is a slice of it, not a copy). Only
/// the bytes of a frame cut by the end of a read are kept until the next read.
///
/// What the frame layer refuses, it refuses for good (the byte stream cannot be resynchronised):
/// a frame longer than `maxFrameSize` (close 1009), and a control frame that is fragmented or
/// longer than 125 bytes (close 1002). Every other rule (masking, reserved bits, opcodes, the
/// order of fragments) is the handler's and ``MessageAssembler``'s.
struct WebSocketFrameReader {
    enum Failure: Equatable {
        /// A frame whose payload is longer than the limit: close 1009.
        case frameTooLarge
        /// A control frame that is not final or longer than 125 bytes: close 1002.
        case invalidControlFrame
    }

    enum Result {
        case frame(ReadFrame)
        /// The bytes so far end inside a frame.
        case needMoreData
        /// The stream is not WebSocket frames within the limits; nothing more is read.
        case failed(Failure)
    }

    /// The largest payload of one frame, in bytes.
    let maxFrameSize: Int
    /// Bytes read and not yet cut into frames (the start of a frame); `nil`, never empty, when there
    /// are none, so that an idle connection keeps no receive buffer.
    private var pending: ByteBuffer?
    private var failure: Failure?

    init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    /// The bytes kept of a frame not complete yet.
    var pendingBytes: Int { pending?.readableBytes ?? 0 }

    /// Takes the bytes of one read.
    mutating func append(_ buffer: ByteBuffer) {
        guard failure == nil, buffer.readableBytes > 0 else { return }
        guard var kept = pending else {
            pending = buffer
            return
        }
        var buffer = buffer
        kept.writeBuffer(&buffer)
        pending = kept
    }

    /// The next complete frame of the bytes appended so far.
    mutating func next() -> Result {
        if let failure { return .failed(failure) }
        guard var buffer = pending else { return .needMoreData }
        let result = Self.cut(&buffer, maxFrameSize: maxFrameSize)
        switch result {
        case .frame:
            pending = buffer.readableBytes > 0 ? buffer : nil
        case .needMoreData:
            break
        case .failed(let failure):
            self.failure = failure
            pending = nil
        }
        return result
    }

    /// Cuts one frame off the front of `buffer` (moving its reader index past it), or leaves the
    /// buffer as it was.
    static func cut(_ buffer: inout ByteBuffer, maxFrameSize: Int) -> Result {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return .needMoreData }
        let fin = first & 0x80 != 0
        // every 4-bit value is an opcode (the unknown ones are the handler's protocol error)
        let opcode = WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!
        let masked = second & 0x80 != 0
        var headerSize = 2
        let length: UInt64
        switch second & 0x7F {
        case 126:
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return .needMoreData }
            length = UInt64(extended)
            headerSize += 2
        case 127:
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return .needMoreData }
            length = extended
            headerSize += 8
        case let short:
            length = UInt64(short)
        }
        if opcode.isControlOpcode {
            guard fin, length <= 125 else { return .failed(.invalidControlFrame) }
        }
        guard length <= UInt64(maxFrameSize) else { return .failed(.frameTooLarge) }
        var maskKey: WebSocketMask?
        if masked {
            guard let key = buffer.getInteger(at: start + headerSize, as: UInt32.self) else { return .needMoreData }
            maskKey = WebSocketMask(networkValue: key)
            headerSize += 4
        }
        guard let payload = buffer.getSlice(at: start + headerSize, length: Int(length)) else {
            return .needMoreData
        }
        buffer.moveReaderIndex(to: start + headerSize + Int(length))
        return .frame(
            ReadFrame(fin: fin, reservedBits: first & 0x70, opcode: opcode, maskKey: maskKey, payload: payload))
    }
}
