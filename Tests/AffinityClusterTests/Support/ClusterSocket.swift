import AffinityProtocol
import AffinityTestSupport
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// A raw WebSocket client of one replica: every message received is queued for ``next(timeout:)``, and
/// ``send(_:)`` writes one message.
struct ClusterSocket: Sendable {
    private let queue: MessageQueue
    private let outbound: AsyncStream<String>.Continuation

    fileprivate init(queue: MessageQueue, outbound: AsyncStream<String>.Continuation) {
        self.queue = queue
        self.outbound = outbound
    }

    /// Sends one message.
    func send(_ message: AffinityMessage) {
        outbound.yield(String(decoding: message.encoded(), as: UTF8.self))
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
        let deadline = ContinuousClock.now + timeout
        while true {
            switch queue.take() {
            case .message(let message): return message
            case .closed: throw FixtureError("the socket closed")
            case .empty:
                guard ContinuousClock.now < deadline else { throw FixtureError("no message within \(timeout)") }
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    /// Whether the socket has closed (messages may still be queued).
    var isClosed: Bool { queue.isClosed }
}

/// The messages a socket received, in order.
final class MessageQueue: Sendable {
    enum Next {
        case message(AffinityMessage)
        case empty
        case closed
    }

    private struct State {
        var messages: [AffinityMessage] = []
        var head = 0
        var closed = false
    }

    private let state = Mutex(State())

    func push(_ message: AffinityMessage) {
        state.withLock { $0.messages.append(message) }
    }

    func close() {
        state.withLock { $0.closed = true }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    func take() -> Next {
        state.withLock { state in
            guard state.head < state.messages.count else { return state.closed ? .closed : .empty }
            let message = state.messages[state.head]
            state.head += 1
            if state.head > 1024 {
                state.messages.removeFirst(state.head)
                state.head = 0
            }
            return .message(message)
        }
    }
}

/// Opens a WebSocket to `port` on loopback for `body`, then closes it.
func withClusterSocket<T: Sendable>(
    port: Int, _ body: @Sendable (ClusterSocket) async throws -> T
) async throws -> T {
    let queue = MessageQueue()
    return try await withTextWebSocket(
        url: "ws://127.0.0.1:\(port)/v1/ws",
        received: { text in
            if let decoded = try? AffinityMessage.decode(Array(text.utf8)) { queue.push(decoded) }
        },
        closed: { queue.close() }
    ) { outbound in
        try await body(ClusterSocket(queue: queue, outbound: outbound))
    }
}

/// Opens a WebSocket to `url` for `body`, which sends text frames through the continuation it is given; every
/// text frame received goes to `received`, and `closed` is called when the connection ends. Closes the
/// connection (normal closure) when `body` returns.
func withTextWebSocket<T: Sendable>(
    url: String, received: @escaping @Sendable (String) -> Void, closed: @escaping @Sendable () -> Void = {},
    _ body: (AsyncStream<String>.Continuation) async throws -> T
) async throws -> T {
    let (outbound, outboundContinuation) = AsyncStream.makeStream(of: String.self)
    var logger = Logger(label: "test-socket")
    logger.logLevel = .critical
    let connectionLogger = logger
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { closed() }
            _ = try? await WebSocketClient.connect(
                url: url,
                configuration: WebSocketClientConfiguration(maxFrameSize: 8 << 20, autoPing: .disabled),
                logger: connectionLogger
            ) { inboundStream, outboundWriter, _ in
                try await withThrowingTaskGroup(of: Void.self) { inner in
                    inner.addTask {
                        for await text in outbound {
                            try await outboundWriter.write(.text(text))
                        }
                        try await outboundWriter.close(.normalClosure, reason: nil)
                    }
                    for try await message in inboundStream.messages(maxSize: 8 << 20) {
                        if case .text(let text) = message { received(text) }
                    }
                    inner.cancelAll()
                }
            }
        }
        defer { outboundContinuation.finish() }
        let result = try await body(outboundContinuation)
        outboundContinuation.finish()
        try await group.waitForAll()
        return result
    }
}
