import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Three replicas on a Sentinel-managed Redis (a master, a replica, three sentinels, all real processes on
    /// loopback) while the Redis master is killed with SIGKILL under load.
    @Suite("Redis Sentinel failover")
    struct SentinelFailoverTests {
        static let firstKey: Int64 = 2_251_799_813_705_000

        /// 40 outcomes are parked (no subscriber yet), then 1200 are sent from a worker on r2 to a client on r1,
        /// with 120 for keys nobody subscribes to mixed in (parked up to the kill), and the Redis master is
        /// killed after 330 answers. The worker sends again what was answered
        /// `unavailable`, as Zeebe would. Then: every outcome answered `delivered` or `parked` reaches its client;
        /// the outcomes parked before the kill are delivered after the failover (they were confirmed by the
        /// replica with WAIT); all three replicas are ready again within seconds, r1 wrote its routes back to
        /// the new master. The old master is restarted after the failover (parks answer `unavailable` until the
        /// sentinels made it a replica of the new one); then new parks are confirmed again.
        @Test(.timeLimit(.minutes(5)))
        func killingTheRedisMasterLosesNoAnsweredOutcome() async throws {
            try await withSentinelClusterEnvironment { cluster, deployment in
                let (r1, r2, r3) = try await cluster.startThree()
                let live = try outcomeLoad(firstKey: Self.firstKey, keys: 40, outcomes: 1200, idPrefix: "live")
                let early = try outcomeLoad(firstKey: Self.firstKey + 1000, keys: 20, outcomes: 40, idPrefix: "early")
                let late = try outcomeLoad(firstKey: Self.firstKey + 2000, keys: 20, outcomes: 40, idPrefix: "late")
                // every 10th outcome of the load is for a key nobody subscribes to: parked up to the kill
                let during = try outcomeLoad(
                    firstKey: Self.firstKey + 3000, keys: 20, outcomes: 120, idPrefix: "during")
                let load = live.outcomes.enumerated().flatMap { index, outcome in
                    index % 10 == 9 ? [outcome, during.outcomes[index / 10]] : [outcome]
                }
                let liveKeys = Set(live.keys)
                let ledger = OutcomeLedger()
                let oldMaster = try await deployment.currentMaster()
                let readyAgain = try await withClusterSocket(port: try r1.port) { client in
                    try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await client.hello(role: .client, clientId: "front")
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        try await subscribe(client, to: live.keys)
                        let earlyAnswers = try await deliver(early.outcomes, through: worker, window: 10)
                        #expect(earlyAnswers.values.allSatisfy { $0 == "parked" }, "\(earlyAnswers)")

                        async let receiver: Void = receive(client, into: ledger) {
                            guard let answers = ledger.answers else { return false }
                            let received = ledger.received
                            return load.allSatisfy { outcome in
                                !liveKeys.contains(outcome.key)
                                    || answers[outcome.id] != "delivered"
                                        && answers[outcome.id] != "parked"
                                    || received[outcome.id] != nil
                            }
                        }
                        let replicas = [r1, r2, r3]
                        let (answers, retried, recovery) = try await withThrowingTaskGroup(
                            of: Duration.self, returning: ([String: String], Int, Duration?).self
                        ) { group in
                            let result = try await deliverRetryingTransientErrors(
                                load, through: worker, window: 20
                            ) { answered in
                                guard answered == 330 else { return }
                                try deployment.node(port: oldMaster).stop()
                                let killed = ContinuousClock.now
                                group.addTask {
                                    let recovery = try await waitUntilReady(replicas, since: killed)
                                    // the old master comes back as a replica of the new one (as the pods of
                                    // components/redis-sentinel do: they ask the sentinels first); until then
                                    // parks cannot be confirmed and are answered unavailable
                                    let newMaster = try await deployment.waitForFailover(from: oldMaster)
                                    try await deployment.node(port: oldMaster).start(
                                        additionalArguments: ["--replicaof", "127.0.0.1", String(newMaster)])
                                    return recovery
                                }
                            }
                            let recovery = try await group.next()
                            return (result.answers, result.retried, recovery)
                        }
                        ledger.finish(with: answers)
                        try await receiver
                        #expect(answers.values.allSatisfy { $0 == "delivered" || $0 == "parked" }, "\(answers)")
                        #expect(ledger.acknowledgedIDs.count == load.count)
                        let parkedDuring = during.outcomes.filter { answers[$0.id] == "parked" }.count
                        #expect(parkedDuring == during.outcomes.count)
                        print("sentinel failover under load: \(retried) answers were unavailable and sent again")
                        return recovery
                    }
                }
                let newMaster = try await deployment.waitForFailover(from: oldMaster)
                let recovery = try #require(readyAgain, "the master was killed and the replicas recovered")
                #expect(recovery < .seconds(20), "replicas ready again \(recovery) after the kill")
                print("sentinel failover: all three replicas ready \(recovery) after kill -9 of the Redis master")
                #expect(r1.log.contains("routes written back after the store reconnected"), "r1 wrote its 40 routes to the new master")

                // the old master is a replica again: parks are confirmed again
                try await deployment.waitForReplicas(1, of: newMaster, timeout: .seconds(60))
                try await withClusterSocket(port: try r2.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker-late")
                    let (lateAnswers, _) = try await deliverRetryingTransientErrors(
                        late.outcomes, through: worker, window: 10)
                    #expect(lateAnswers.values.allSatisfy { $0 == "parked" }, "\(lateAnswers)")
                }
                // the outcomes parked before the kill and after the failover reach a client on r3
                try await withClusterSocket(port: try r3.port) { lateClient in
                    _ = try await lateClient.hello(role: .client, clientId: "front-late")
                    for key in early.keys + during.keys + late.keys { lateClient.send(.subscribe(key: key)) }
                    try await receive(lateClient, into: ledger) {
                        (early.outcomes + during.outcomes + late.outcomes).allSatisfy { ledger.received[$0.id] != nil }
                    }
                }
                let received = ledger.received
                for outcome in early.outcomes + load + late.outcomes {
                    #expect(received[outcome.id] == outcome.key, "\(outcome.id) was answered and must arrive")
                }
            }
        }
    }
}

/// Polls `/health/ready` of every replica until all answer 200 after at least one answered something else,
/// and returns how long that took from `since`.
private func waitUntilReady(_ replicas: [ReplicaProcess], since start: ContinuousClock.Instant) async throws -> Duration
{
    var sawNotReady = false
    while ContinuousClock.now - start < .seconds(60) {
        var ready = 0
        for replica in replicas {
            if (try? await httpGet(port: try replica.port, path: "/health/ready").status) == 200 {
                ready += 1
            } else {
                sawNotReady = true
            }
        }
        if sawNotReady && ready == replicas.count {
            return ContinuousClock.now - start
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw FixtureError("the replicas were not all ready within 60 s of the Redis master's kill")
}
