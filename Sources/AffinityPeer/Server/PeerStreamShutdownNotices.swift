import Synchronization

/// Tells the server's open `DeliverStream`s that the server is shutting down, so that each sends its caller
/// the drain notice (an answer with request id 0 and no failure) and the callers finish their streams:
/// gRPC's graceful shutdown waits for open streams, and a caller keeps its stream open until told.
final class PeerStreamShutdownNotices: Sendable {
    private struct State {
        var shuttingDown = false
        var nextToken: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var ended: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Registers a stream; pass the token to ``waitForShutdown(_:)`` and ``streamEnded(_:)``.
    func register() -> UInt64 {
        self.state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
    }

    /// Waits until the server shuts down (`true`) or the stream ended (`false`).
    func waitForShutdown(_ token: UInt64) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let immediate = self.state.withLock { state -> Bool? in
                if state.ended.remove(token) != nil { return false }
                if state.shuttingDown { return true }
                state.waiters[token] = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// The stream `token` ended: its waiter returns `false`.
    func streamEnded(_ token: UInt64) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let waiter = state.waiters.removeValue(forKey: token) { return waiter }
            if !state.shuttingDown { state.ended.insert(token) }
            return nil
        }
        waiter?.resume(returning: false)
    }

    /// The server shuts down: every waiting stream returns `true`, and so do later ones.
    func shutDown() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.shuttingDown = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.resume(returning: true)
        }
    }
}
