import AffinityTestSupport
import Foundation
import Synchronization

/// A client of the Node package's wire protocol on `/` (what `ZBAffinityClient` and `createAffinityWorker` send
/// and read), written from the frames of its README: raw text frames out, every text frame in kept as parsed
/// JSON (Foundation's parser, independent of the server's).
struct LegacySocket: Sendable {
    private let received: LegacyFrames
    private let outbound: AsyncStream<String>.Continuation

    fileprivate init(received: LegacyFrames, outbound: AsyncStream<String>.Continuation) {
        self.received = received
        self.outbound = outbound
    }

    /// Sends one raw text frame.
    func send(_ text: String) {
        outbound.yield(text)
    }

    /// Waits until `count` frames arrived (at most `timeout`) and returns all received so far.
    func frames(count: Int, timeout: Duration = .seconds(30)) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let frames = received.all
            if frames.count >= count { return frames.map(\.object) }
            guard ContinuousClock.now < deadline else {
                throw FixtureError("\(frames.count) of \(count) legacy frames within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The frames received so far.
    var receivedCount: Int { received.all.count }
}

/// A parsed frame; `[String: Any]` is not `Sendable`, so it is kept as its JSON text and parsed on demand.
struct LegacyFrame: Sendable {
    let text: String
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

final class LegacyFrames: Sendable {
    private let frames = Mutex<[LegacyFrame]>([])
    func push(_ text: String) { frames.withLock { $0.append(LegacyFrame(text: text)) } }
    var all: [LegacyFrame] { frames.withLock { $0 } }
}

/// Opens a legacy-protocol WebSocket to `ws://127.0.0.1:<port>/` for `body`, then closes it.
func withLegacySocket<T: Sendable>(port: Int, _ body: @Sendable (LegacySocket) async throws -> T) async throws -> T {
    let frames = LegacyFrames()
    return try await withTextWebSocket(url: "ws://127.0.0.1:\(port)/", received: { frames.push($0) }) { outbound in
        try await body(LegacySocket(received: frames, outbound: outbound))
    }
}
