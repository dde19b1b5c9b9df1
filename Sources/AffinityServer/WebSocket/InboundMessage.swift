import AffinityProtocol

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

extension InboundMessage {
    /// The session's view of a message the assembler joined.
    init(_ message: AssembledMessage) {
        switch message {
        case .text(let bytes): self = .text(bytes)
        case .binary: self = .binary
        case .oversized(let prefix): self = .oversized(prefix: prefix)
        }
    }
}
