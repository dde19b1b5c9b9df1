import AffinityProtocol
import Synchronization

/// Counters shared by the tasks of one load, and its first fatal error.
final class LoadProgress: Sendable {
    let sent = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let forwarded = Atomic<Int>(0)
    let notDelivered = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    private let failure = Mutex<BenchError?>(nil)

    /// Records the first fatal error and stops the load; true if it was the first.
    func fail(_ error: BenchError) -> Bool {
        stopping.store(true, ordering: .relaxed)
        return failure.withLock { current in
            guard current == nil else { return false }
            current = error
            return true
        }
    }

    /// The first fatal error, if any.
    var firstFailure: BenchError? { failure.withLock { $0 } }
}

/// The life cycle of one outcome as the benchmark runs it, the unit every number is divided by:
/// the client subscribes to a fresh key, a worker delivers an outcome for it and waits for `delivered`
/// (the client received and acked it meanwhile; the latency is recorded at the client), then the client
/// unsubscribes.
struct OutcomeLifecycle: Sendable {
    let topology: LoadTopology
    let keys: KeySource
    let progress: LoadProgress
    let payloadPadding: String

    init(topology: LoadTopology, keys: KeySource, progress: LoadProgress, payloadBytes: Int) {
        self.topology = topology
        self.keys = keys
        self.progress = progress
        self.payloadPadding = String(repeating: "x", count: max(0, payloadBytes - 80))
    }

    /// Runs one outcome; a fatal error (connection lost, stalled) stops the whole load and closes its
    /// connections so that nothing waits forever. Returns false once the load is stopping.
    func run(slot: Int, sequence: Int, recorder: LatencyRecorder) async -> Bool {
        if progress.stopping.load(ordering: .relaxed) { return false }
        progress.inFlight.add(1, ordering: .relaxed)
        defer { progress.inFlight.subtract(1, ordering: .relaxed) }
        let (client, worker, forwarded) = topology.pair(slot: slot, sequence: sequence)
        let key = keys.take()
        let id = "bench-\(key.value)"
        do {
            try await client.subscribe(key)
            let variables = Array(
                #"{"orderId":"\#(id)","status":"approved","total":42.5,"note":"\#(payloadPadding)"}"#.utf8)
            let outcome = try Outcome(id: id, key: key, variables: variables)
            client.inbox.expect(
                .init(id: id, variables: variables, sentAt: .now, recorder: recorder, forwarded: forwarded),
                key: key.value)
            progress.sent.add(1, ordering: .relaxed)
            let status: DeliveryStatus
            do {
                status = try await worker.deliver(outcome)
            } catch let error as BenchError where error.code == .protocolViolation {
                // The server answered an error frame: not delivered (counted), the load goes on.
                _ = client.inbox.settle(key: key.value)
                progress.notDelivered.add(1, ordering: .relaxed)
                try await client.unsubscribe(key)
                return true
            }
            if status == .delivered {
                if client.inbox.settle(key: key.value) {
                    progress.completed.add(1, ordering: .relaxed)
                    if forwarded { progress.forwarded.add(1, ordering: .relaxed) }
                }
            } else {
                _ = client.inbox.settle(key: key.value)
                progress.notDelivered.add(1, ordering: .relaxed)
            }
            try await client.unsubscribe(key)
            return true
        } catch let error as BenchError {
            await stop(error)
        } catch {
            await stop(BenchError(.protocolViolation, "outcome \(id) failed", cause: ErrorText("\(error)")))
        }
        return false
    }

    /// Stops the load with `error` and closes every connection (the waiting tasks fail fast).
    func stop(_ error: BenchError) async {
        if progress.fail(error) { await topology.closeAll() }
    }

    /// Waits until no outcome is in flight; after `timeout` the load is failed as stalled.
    func drain(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while progress.inFlight.load(ordering: .relaxed) > 0 {
            if ContinuousClock.now >= deadline {
                await stop(
                    BenchError(
                        .stalled,
                        "\(progress.inFlight.load(ordering: .relaxed)) outcomes still unanswered \(timeout) after the load stopped"
                    ))
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
