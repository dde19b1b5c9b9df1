import AffinityProtocol
import Synchronization

/// Counters shared by the tasks of one load, and its first fatal error.
final class LoadProgress: Sendable {
    let sent = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let forwarded = Atomic<Int>(0)
    let notDelivered = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
    /// Arrivals of the relay phase's fixed-rate run that found every subscription busy (not started).
    let noFreeSubscription = Atomic<Int>(0)
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
/// unsubscribes. With `relay` (the `relay` phase) the key is one of the pre-subscribed ones: one outcome
/// on a subscription that stays, no subscribe or unsubscribe.
struct OutcomeLifecycle: Sendable {
    let topology: LoadTopology
    let keys: KeySource
    let progress: LoadProgress
    let payloadPadding: String
    let relay: RelaySubscriptions?

    init(
        topology: LoadTopology, keys: KeySource, progress: LoadProgress, payloadBytes: Int,
        relay: RelaySubscriptions? = nil
    ) {
        self.topology = topology
        self.keys = keys
        self.progress = progress
        self.payloadPadding = String(repeating: "x", count: max(0, payloadBytes - 80))
        self.relay = relay
    }

    /// Runs one outcome; a fatal error (connection lost, stalled) stops the whole load and closes its
    /// connections so that nothing waits forever. Returns false once the load is stopping.
    func run(slot: Int, sequence: Int, recorder: LatencyRecorder) async -> Bool {
        if progress.stopping.load(ordering: .relaxed) { return false }
        if let relay {
            guard let subscription = relay.acquire() else {
                progress.noFreeSubscription.add(1, ordering: .relaxed)
                return true
            }
            defer { relay.release(subscription) }
            return await deliver(
                id: "relay-\(subscription.key.value)-\(relay.nextNumber())", key: subscription.key,
                client: subscription.client, worker: subscription.worker, forwarded: subscription.forwarded,
                subscribes: false, recorder: recorder)
        }
        let (client, worker, forwarded) = topology.pair(slot: slot, sequence: sequence)
        let key = keys.take()
        return await deliver(
            id: "bench-\(key.value)", key: key, client: client, worker: worker, forwarded: forwarded,
            subscribes: true, recorder: recorder)
    }

    /// One outcome `id` for `key` from `worker` to `client`, subscribing before and unsubscribing after
    /// when `subscribes`.
    private func deliver(
        id: String, key: ProcessInstanceKey, client: BenchConnection, worker: BenchConnection, forwarded: Bool,
        subscribes: Bool, recorder: LatencyRecorder
    ) async -> Bool {
        progress.inFlight.add(1, ordering: .relaxed)
        defer { progress.inFlight.subtract(1, ordering: .relaxed) }
        do {
            if subscribes { try await client.subscribe(key) }
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
                if subscribes { try await client.unsubscribe(key) }
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
            if subscribes { try await client.unsubscribe(key) }
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
