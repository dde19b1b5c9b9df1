import AffinityProtocol
import Synchronization

/// The receiving side of one benchmark connection: the replies awaited by the load (welcome, subscribed,
/// unsubscribed, results) and, for a client, the outcomes it expects. Fed by ``BenchFrameHandler`` on the
/// event loop; awaited from the load's tasks.
final class BenchInbox: Sendable {
    /// What a waiter waits for.
    enum WaitKey: Hashable {
        case welcome
        case subscribed(Int64)
        case unsubscribed(Int64)
        case result(String)
    }

    /// What a waiter receives.
    enum Reply: Sendable {
        case welcome(replica: String)
        case done
        case result(DeliveryStatus)
    }

    /// An outcome a client expects: its id, its exact variables, when the worker sent it, where to record.
    struct Expectation: Sendable {
        let id: String
        let variables: [UInt8]
        let sentAt: ContinuousClock.Instant
        let recorder: LatencyRecorder
        /// Whether the worker sits on another replica than the client (the outcome is forwarded).
        var forwarded = false
    }

    private struct State {
        var waiters: [WaitKey: CheckedContinuation<Reply, any Error>] = [:]
        var expected: [Int64: Expectation] = [:]
        var receivedIDs: Set<String> = []
        var counts = CorrectnessCounts()
        var closed: BenchError?
    }

    private let state = Mutex(State())
    private let keepsReceivedIDs: Bool

    /// `keepsReceivedIDs`: remember every received id to detect duplicates (load connections, not idle ones).
    init(keepsReceivedIDs: Bool) {
        self.keepsReceivedIDs = keepsReceivedIDs
    }

    /// Registers a waiter for `key`, then runs `send`; resumes with the reply (or throws on an error frame or
    /// a closed connection).
    func request(_ key: WaitKey, send: () -> Void) async throws -> Reply {
        try await withCheckedThrowingContinuation { continuation in
            let failure: BenchError? = state.withLock { state in
                if let closed = state.closed { return closed }
                if state.waiters[key] != nil {
                    return BenchError(.protocolViolation, "two requests wait for the same answer \(key)")
                }
                state.waiters[key] = continuation
                return nil
            }
            if let failure {
                continuation.resume(throwing: failure)
            } else {
                send()
            }
        }
    }

    /// Notes that the outcome `expectation` for `key` is about to be sent by a worker.
    func expect(_ expectation: Expectation, key: Int64) {
        state.withLock { $0.expected[key] = expectation }
    }

    /// After the worker's answer: true if the expected outcome for `key` arrived (and removes the
    /// expectation); false (counted as lost) if it did not.
    func settle(key: Int64) -> Bool {
        state.withLock { state in
            guard state.expected.removeValue(forKey: key) != nil else { return true }
            state.counts.lost += 1
            return false
        }
    }

    /// The correctness counts of this connection.
    var counts: CorrectnessCounts { state.withLock { $0.counts } }

    /// Handles one text message; returns a frame to send back (the `ack` of an outcome).
    func receive(_ bytes: [UInt8], now: ContinuousClock.Instant) -> [UInt8]? {
        let message: AffinityMessage
        do {
            message = try AffinityMessage.decode(bytes)
        } catch {
            state.withLock { $0.counts.protocolErrors += 1 }
            return nil
        }
        switch message {
        case .welcome(let replica, _):
            resume(.welcome, with: .success(.welcome(replica: replica)))
        case .subscribed(let key):
            resume(.subscribed(key.value), with: .success(.done))
        case .unsubscribed(let key):
            resume(.unsubscribed(key.value), with: .success(.done))
        case .result(let id, let status):
            resume(.result(id), with: .success(.result(status)))
        case .outcome(let outcome):
            receiveOutcome(outcome, now: now)
            return AffinityMessage.ack(id: outcome.id).encoded()
        case .error(let code, let message, let ref):
            let error = BenchError(.protocolViolation, "server error \(code): \(message) (ref \(ref ?? "-"))")
            let matched = state.withLock { state -> CheckedContinuation<Reply, any Error>? in
                guard let ref else { return nil }
                if let waiter = state.waiters.removeValue(forKey: .result(ref)) { return waiter }
                if let key = Int64(ref) {
                    if let waiter = state.waiters.removeValue(forKey: .subscribed(key)) { return waiter }
                    if let waiter = state.waiters.removeValue(forKey: .unsubscribed(key)) { return waiter }
                }
                return nil
            }
            if let matched {
                matched.resume(throwing: error)
            } else {
                state.withLock { $0.counts.protocolErrors += 1 }
            }
        case .drain:
            close(BenchError(.connection, "the replica sent drain"))
        case .hello, .subscribe, .unsubscribe, .ack, .confirmedAck, .acknowledged:
            state.withLock { $0.counts.protocolErrors += 1 }
        }
        return nil
    }

    /// Fails every waiter and every later request with `error`.
    func close(_ error: BenchError) {
        let waiters = state.withLock { state -> [CheckedContinuation<Reply, any Error>] in
            if state.closed == nil { state.closed = error }
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            return waiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    private func resume(_ key: WaitKey, with result: Result<Reply, any Error>) {
        let waiter = state.withLock { state in
            let waiter = state.waiters.removeValue(forKey: key)
            if waiter == nil { state.counts.protocolErrors += 1 }
            return waiter
        }
        waiter?.resume(with: result)
    }

    private func receiveOutcome(_ outcome: Outcome, now: ContinuousClock.Instant) {
        let recorded: (Expectation, Duration)? = state.withLock { state in
            if let expectation = state.expected[outcome.key.value], expectation.id == outcome.id {
                state.expected.removeValue(forKey: outcome.key.value)
                if keepsReceivedIDs { state.receivedIDs.insert(outcome.id) }
                state.counts.received += 1
                if expectation.variables != outcome.variables { state.counts.corrupted += 1 }
                return (expectation, now - expectation.sentAt)
            }
            if state.receivedIDs.contains(outcome.id) {
                state.counts.duplicates += 1
            } else {
                state.counts.wrongClient += 1
            }
            return nil
        }
        if let recorded {
            let (seconds, attoseconds) = recorded.1.components
            recorded.0.recorder.record(
                nanoseconds: UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000),
                forwarded: recorded.0.forwarded)
        }
    }
}
