import Synchronization

/// A process-unique id of one connection (WebSocket or long poll).
struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    private static let counter = Atomic<UInt64>(0)

    let rawValue: UInt64

    /// A new id, never handed out before in this process.
    static func next() -> ConnectionID {
        ConnectionID(rawValue: counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    var description: String { "c\(rawValue)" }
}
