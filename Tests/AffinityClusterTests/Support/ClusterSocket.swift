import AffinityProtocol
import AffinityTestSupport

/// A protocol-v1 client of one replica over the shared test WebSocket (``TestSocket``): ``send(_:)`` writes
/// one message, ``next(timeout:)`` reads the next one.
struct ClusterSocket: Sendable {
    private let socket: TestSocket

    fileprivate init(socket: TestSocket) {
        self.socket = socket
    }

    /// Sends one message.
    func send(_ message: AffinityMessage) {
        socket.send(message)
    }

    /// Says hello and returns the replica id from `welcome`.
    func hello(role: PeerRole, clientId: String) async throws -> String {
        send(.hello(role: role, clientId: clientId))
        guard case .welcome(let replica, _) = try await next() else {
            throw FixtureError("expected welcome")
        }
        return replica
    }

    /// The next message; throws after `timeout` or once the socket closed and every message was read.
    func next(timeout: Duration = .seconds(15)) async throws -> AffinityMessage {
        switch await socket.events.next(timeout: timeout) {
        case .text(let text): return try AffinityMessage.decode(Array(text.utf8))
        case .binary: throw FixtureError("a binary frame")
        case .closed, .failed: throw FixtureError("the socket closed")
        case nil:
            if socket.events.isFinished { throw FixtureError("the socket closed") }
            throw FixtureError("no message within \(timeout)")
        }
    }

    /// Whether the socket has closed (messages may still be queued).
    var isClosed: Bool { socket.events.isFinished }
}

/// Opens a WebSocket to `port` on loopback for `body`, then closes it.
func withClusterSocket<T: Sendable>(
    port: Int, _ body: @Sendable (ClusterSocket) async throws -> T
) async throws -> T {
    try await withSocket(url: "ws://127.0.0.1:\(port)/v1/ws") { socket in
        try await body(ClusterSocket(socket: socket))
    }
}
