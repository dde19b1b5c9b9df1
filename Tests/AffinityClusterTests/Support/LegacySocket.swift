import AffinityTestSupport
import Foundation
import Synchronization

/// A client of the Node package's wire protocol on `/` (what `ZBAffinityClient` and `createAffinityWorker` send
/// and read), written from the frames of its README: raw text frames out over the shared test WebSocket
/// (``TestSocket``), every text frame in kept as parsed JSON (Foundation's parser, independent of the
/// server's).
struct LegacySocket: Sendable {
    private let socket: TestSocket
    private let received = LegacyFrames()

    fileprivate init(socket: TestSocket) {
        self.socket = socket
    }

    /// Sends one raw text frame.
    func send(_ text: String) {
        socket.send(text)
    }

    /// Waits until `count` frames arrived (at most `timeout`) and returns all received so far.
    func frames(count: Int, timeout: Duration = .seconds(30)) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + timeout
        while received.count < count {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let event = await socket.events.next(timeout: left) else {
                throw FixtureError("\(received.count) of \(count) legacy frames within \(timeout)")
            }
            if case .text(let text) = event { received.push(text) }
        }
        return received.all.map(\.object)
    }

    /// The frames received so far.
    var receivedCount: Int {
        get async {
            while let event = await socket.events.next(timeout: .milliseconds(1)) {
                if case .text(let text) = event { received.push(text) }
            }
            return received.count
        }
    }
}

/// A parsed frame; `[String: Any]` is not `Sendable`, so it is kept as its JSON text and parsed on demand.
struct LegacyFrame: Sendable {
    let text: String
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

private final class LegacyFrames: Sendable {
    private let frames = Mutex<[LegacyFrame]>([])
    func push(_ text: String) { frames.withLock { $0.append(LegacyFrame(text: text)) } }
    var all: [LegacyFrame] { frames.withLock { $0 } }
    var count: Int { frames.withLock { $0.count } }
}

/// Opens a legacy-protocol WebSocket to `ws://127.0.0.1:<port>/` for `body`, then closes it.
func withLegacySocket<T: Sendable>(port: Int, _ body: @Sendable (LegacySocket) async throws -> T) async throws -> T {
    try await withSocket(url: "ws://127.0.0.1:\(port)/") { socket in
        try await body(LegacySocket(socket: socket))
    }
}
