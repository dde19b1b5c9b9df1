import AffinityProtocol
import NIOCore
import NIOWebSocket

/// A complete WebSocket message, handed from the channel to the session.
enum InboundMessage: Sendable, Equatable {
    /// A text message: its bytes (one JSON object by the protocol).
    case text([UInt8])
    /// A binary message; refused by the protocol, so its content is not kept.
    case binary
    /// A text message over the size limit: its first bytes, kept to name it in the `too_large` answer.
    case oversized(prefix: [UInt8])
    /// Not from the network: outcomes are parked for a subscribed key, read them (queued by
    /// ``WebSocketConnection/parkedWaiting(for:)``, so that reads run in the session, in order).
    case readParked(ProcessInstanceKey)
    /// Not from the network: a text message decoded already, which the session's immediate handling (on the
    /// event loop) left to the session (see ``ImmediateMessageHandler``).
    case decoded(AffinityMessage)
    /// Not from the network: the parked copies that late acks, taken on the event loop, must remove; queued
    /// so that the connection's next messages are handled after the removal, as after any ack.
    case removeParkedCopies([ParkedOutcomeReference])
    /// Not from the network: the rest of a delivery of this worker's that needs the store (no local
    /// subscriber took the outcome or acked it in time), for a task of the session
    /// (``InboundMessageQueue/pushWork(_:)``).
    case deliveryNeedsStore(DeliveryCoordinator.StoreStep)
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
        case message(InboundMessage)
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
        opcode: WebSocketOpcode, fin: Bool, maskKey: WebSocketMaskingKey?, data: ByteBuffer
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
        let message: InboundMessage
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
        _ data: ByteBuffer, maskKey: WebSocketMaskingKey?, upTo count: Int, to bytes: inout [UInt8]
    ) {
        let start = bytes.count
        bytes.append(contentsOf: data.readableBytesView.prefix(max(0, count)))
        guard let maskKey else { return }
        for index in start..<bytes.count {
            bytes[index] ^= maskKey[(index - start) & 3]
        }
    }
}
