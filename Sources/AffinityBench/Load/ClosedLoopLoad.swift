import Synchronization

/// Saturation: `concurrency` slots each run outcome life cycles back to back for the warm-up and the
/// measurement window; the window's completed outcomes, latencies and Redis calls make the result.
struct ClosedLoopLoad {
    let lifecycle: OutcomeLifecycle
    let concurrency: Int
    let warmup: Duration
    let duration: Duration

    /// Runs the load against `replicas`.
    func run(replicas: ReplicaSet) async throws -> ThroughputResult {
        let progress = lifecycle.progress
        let warmupRecorder = LatencyRecorder()
        let recorder = LatencyRecorder()
        let clock = ContinuousClock()
        let measureStart = clock.now + warmup
        let lifecycle = self.lifecycle

        let window:
            (
                outcomes: Int, forwarded: Int, seconds: Double, redis: [String: Int]?,
                cpu: (replicas: Double, redis: Double, bench: Double)
            ) =
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for slot in 0..<concurrency {
                        group.addTask {
                            var sequence = 0
                            while await lifecycle.run(
                                slot: slot, sequence: sequence,
                                recorder: clock.now < measureStart ? warmupRecorder : recorder)
                            {
                                sequence += 1
                            }
                        }
                    }
                    do {
                        try await clock.sleep(until: measureStart)
                        let redisBefore = try await replicas.redis?.commandCalls()
                        let startCompleted = progress.completed.load(ordering: .relaxed)
                        let startForwarded = progress.forwarded.load(ordering: .relaxed)
                        let cpuBefore = CPUSnapshot.take(replicas)
                        let started = clock.now
                        try await clock.sleep(until: started + duration)
                        let endCompleted = progress.completed.load(ordering: .relaxed)
                        let endForwarded = progress.forwarded.load(ordering: .relaxed)
                        let ended = clock.now
                        let cpuAfter = CPUSnapshot.take(replicas)
                        let redisAfter = try await replicas.redis?.commandCalls()
                        progress.stopping.store(true, ordering: .relaxed)
                        await lifecycle.drain(timeout: .seconds(30))
                        try await group.waitForAll()
                        let elapsed = ended - started
                        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                        var redis: [String: Int]?
                        if let redisBefore, let redisAfter {
                            redis = CommandStats.delta(from: redisBefore, to: redisAfter)
                        }
                        let cpu = (
                            replicas: cpuAfter.replicas - cpuBefore.replicas, redis: cpuAfter.redis - cpuBefore.redis,
                            bench: cpuAfter.bench - cpuBefore.bench
                        )
                        return (endCompleted - startCompleted, endForwarded - startForwarded, seconds, redis, cpu)
                    } catch {
                        await lifecycle.stop(
                            BenchError(.stalled, "closed-loop load interrupted", cause: ErrorText("\(error)")))
                        throw error
                    }
                }
        if let failure = progress.firstFailure { throw failure }
        try replicas.checkAlive()
        return ThroughputResult(
            layout: replicas.layout, concurrency: concurrency, outcomes: window.outcomes, seconds: window.seconds,
            latency: recorder.summary(),
            localLatency: replicas.replicas.count > 1 ? recorder.summary(.local) : nil,
            forwardedLatency: replicas.replicas.count > 1 ? recorder.summary(.forwarded) : nil,
            forwardedFraction: window.outcomes > 0 ? Double(window.forwarded) / Double(window.outcomes) : 0,
            redisCommands: window.redis, cpuSeconds: window.cpu)
    }
}
