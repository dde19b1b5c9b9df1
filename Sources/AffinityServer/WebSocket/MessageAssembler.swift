import NIOCore
import NIOWebSocket

/// A complete WebSocket message as the assembler joined it from the network's frames (the session gets it
/// as an ``InboundMessage``).
enum AssembledMessage: Sendable, Equatable {
    /// A text message: its bytes (one JSON object by the protocol).
    case text([UInt8])
    /// A binary message; refused by the protocol, so its content is not kept.
    case binary
    /// A text message over the size limit: its first bytes, kept to name it in the `too_large` answer.
    case oversized(prefix: [UInt8])
}

/// Joins WebSocket data frames (text, binary, continuation) into messages, without I/O.
///
/// A message larger than `limit` is not kept: only its first `oversizedPrefix` bytes are, so that
/// the session can answer `too_large` with the message's `id` while the connection survives.
/// Frames are unmasked while they are copied.
struct MessageAssembler {
    enum Result: Equatable {
        /// The frame was taken; the message continues in a later frame.
        case incomplete
        /// The frame completed a message.
        case message(AssembledMessage)
        /// A continuation without a message in progress, or a new message inside a fragmented one.
        case protocolError
    }

    private enum Progress {
        case idle
        case text
        case binary
        case oversized
    }

    /// The largest message kept, in bytes.
    let limit: Int
    /// The bytes kept of an oversized message.
    let oversizedPrefix: Int
    private var progress = Progress.idle
    private var bytes: [UInt8] = []

    init(limit: Int, oversizedPrefix: Int = 4096) {
        self.limit = limit
        self.oversizedPrefix = min(oversizedPrefix, limit)
    }

    /// True while a fragmented message is in progress.
    var isAssembling: Bool {
        if case .idle = progress { return false }
        return true
    }

    /// Takes one data frame (`opcode` text, binary or continuation).
    mutating func append(
        opcode: WebSocketOpcode, fin: Bool, maskKey: WebSocketMask?, data: ByteBuffer
    ) -> Result {
        switch (opcode, progress) {
        case (.text, .idle):
            if data.readableBytes > limit {
                progress = .oversized
                Self.append(data, maskKey: maskKey, upTo: oversizedPrefix, to: &bytes)
            } else {
                progress = .text
                Self.append(data, maskKey: maskKey, upTo: limit, to: &bytes)
            }
        case (.binary, .idle):
            progress = .binary
        case (.continuation, .text):
            if bytes.count + data.readableBytes > limit {
                progress = .oversized
                bytes.removeSubrange(min(oversizedPrefix, bytes.count)...)
                if bytes.count < oversizedPrefix {
                    Self.append(data, maskKey: maskKey, upTo: oversizedPrefix - bytes.count, to: &bytes)
                }
            } else {
                Self.append(data, maskKey: maskKey, upTo: data.readableBytes, to: &bytes)
            }
        case (.continuation, .oversized):
            if bytes.count < oversizedPrefix {
                Self.append(data, maskKey: maskKey, upTo: oversizedPrefix - bytes.count, to: &bytes)
            }
        case (.continuation, .binary):
            break
        case (.continuation, .idle), (.text, _), (.binary, _):
            reset()
            return .protocolError
        default:
            reset()
            return .protocolError
        }
        guard fin else { return .incomplete }
        let message: AssembledMessage
        switch progress {
        case .text: message = .text(bytes)
        case .oversized: message = .oversized(prefix: bytes)
        case .binary, .idle: message = .binary
        }
        reset()
        return .message(message)
    }

    /// Drops a message in progress.
    mutating func reset() {
        progress = .idle
        bytes = []
    }

    /// Appends at most `count` bytes of `data`, unmasked, to `bytes`.
    private static func append(
        _ data: ByteBuffer, maskKey: WebSocketMask?, upTo count: Int, to bytes: inout [UInt8]
    ) {
        let start = bytes.count
        bytes.append(contentsOf: data.readableBytesView.prefix(max(0, count)))
        guard let maskKey, bytes.count > start else { return }
        bytes.withUnsafeMutableBytes { bytes in
            maskKey.apply(to: UnsafeMutableRawBufferPointer(rebasing: bytes[start...]))
        }
    }
}
