import Synchronization

/// Half load: outcomes start at a fixed rate (open loop, paced arrivals that do not wait for completions)
/// for the warm-up and the window; latencies of the outcomes started in the window make the result.
struct OpenLoopLoad {
    let lifecycle: OutcomeLifecycle
    let rate: Double
    let warmup: Duration
    let duration: Duration
    let slots: Int

    /// Runs the load against `replicas`.
    func run(replicas: ReplicaSet) async throws -> OpenLoopResult {
        let progress = lifecycle.progress
        let warmupRecorder = LatencyRecorder()
        let recorder = LatencyRecorder()
        let clock = ContinuousClock()
        let lifecycle = self.lifecycle
        let slots = self.slots
        let interval = Duration.nanoseconds(Int64(1e9 / max(rate, 1)))
        let warmupArrivals = Int(Self.seconds(warmup) * rate)
        let totalArrivals = warmupArrivals + Int(Self.seconds(duration) * rate)
        let start = clock.now
        var windowStartCompleted = 0
        var windowStart = start
        var skipped = 0
        var cpuAtWindowStart: CPUSnapshot?
        // Stay below the server's subscriptions-per-connection limit (1000 by default): an arrival that
        // finds this many outcomes in flight is skipped and counted, not started.
        let maxInFlight = lifecycle.topology.clients.count * 900
        await withDiscardingTaskGroup { group in
            var arrival = 0
            while arrival < totalArrivals && !progress.stopping.load(ordering: .relaxed) {
                let now = clock.now
                while arrival < totalArrivals && start + interval * arrival <= now {
                    if arrival == warmupArrivals {
                        windowStart = now
                        windowStartCompleted = progress.completed.load(ordering: .relaxed)
                        cpuAtWindowStart = CPUSnapshot.take(replicas)
                    }
                    let number = arrival
                    arrival += 1
                    if progress.inFlight.load(ordering: .relaxed) >= maxInFlight {
                        skipped += 1
                        continue
                    }
                    let target = number < warmupArrivals ? warmupRecorder : recorder
                    group.addTask {
                        _ = await lifecycle.run(slot: number % slots, sequence: number / slots, recorder: target)
                    }
                }
                try? await clock.sleep(until: start + interval * arrival, tolerance: .microseconds(100))
            }
            await lifecycle.drain(timeout: .seconds(30))
        }
        // CPU from the window's first arrival until its last outcome was answered.
        let cpuAtEnd = CPUSnapshot.take(replicas)
        if let failure = progress.firstFailure { throw failure }
        try replicas.checkAlive()
        _ = windowStart
        let elapsed = Self.seconds(duration)
        let outcomes = progress.completed.load(ordering: .relaxed) - windowStartCompleted
        let cpu = cpuAtWindowStart.map { start in
            (
                replicas: cpuAtEnd.replicas - start.replicas, redis: cpuAtEnd.redis - start.redis,
                bench: cpuAtEnd.bench - start.bench
            )
        }
        return OpenLoopResult(
            layout: replicas.layout, targetRate: rate, achievedRate: elapsed > 0 ? Double(outcomes) / elapsed : 0,
            outcomes: outcomes, skippedArrivals: skipped + progress.noFreeSubscription.load(ordering: .relaxed),
            latency: recorder.summary(),
            localLatency: replicas.replicas.count > 1 ? recorder.summary(.local) : nil,
            forwardedLatency: replicas.replicas.count > 1 ? recorder.summary(.forwarded) : nil, cpuSeconds: cpu)
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
