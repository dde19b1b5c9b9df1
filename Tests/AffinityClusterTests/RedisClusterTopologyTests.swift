import AffinityProtocol
import AffinityRedis
import AffinityTestSupport
import Foundation
import Testing

/// Runs `body` with a fresh cluster CA and a Redis Cluster (three masters, three replicas) whose
/// `redis-cluster://` URL the replicas get; kills every replica and Redis process afterwards.
func withRedisClusterEnvironment<T>(
    _ body: (ClusterEnvironment, RedisClusterDeployment) async throws -> T
) async throws -> T {
    try await withTestPKI { pki in
        let authority = try await offloaded { try pki.makeAuthority("cluster") }
        return try await withRedisClusterDeployment { deployment in
            let environment = ClusterEnvironment(
                redis: deployment.nodes[0], pki: pki, authority: authority, directory: pki.directory,
                redisURL: deployment.url)
            defer { environment.killAll() }
            return try await body(environment, deployment)
        }
    }
}

extension ClusterTests {
    /// Three `affinity-server` replicas on a Redis Cluster (three masters with a replica each, real processes
    /// on loopback).
    @Suite("Redis Cluster")
    struct RedisClusterTopologyTests {
        static let firstKey: Int64 = 2_251_799_813_709_000

        /// A client on r1 waits on keys whose slots lie on every master; three workers, one per replica,
        /// deliver 900 outcomes (two thirds forwarded to r1) while 2000 slots move from one master to another
        /// (`redis-cli --cluster reshard`, MOVED and ASK under load). Every outcome is answered `delivered` and
        /// reaches the client exactly once; 30 outcomes for keys nobody waits on are parked, and a subscriber
        /// afterwards takes them.
        @Test(.timeLimit(.minutes(5)))
        func threeReplicasDeliverOverEverySlotRangeWhileSlotsMove() async throws {
            try await withRedisClusterEnvironment { cluster, deployment in
                let (r1, r2, r3) = try await cluster.startThree()
                let live = try outcomeLoad(firstKey: Self.firstKey, keys: 60, outcomes: 900, idPrefix: "live")
                let parked = try outcomeLoad(firstKey: Self.firstKey + 1000, keys: 10, outcomes: 30, idPrefix: "parked")
                // the keys' route slots lie on every master
                let masters = try await deployment.masters()
                var mastersServing = Set<Int>()
                for key in live.keys {
                    let slot = RedisClusterSlot.slot(forKey: "affinity:{\(key)}:route")
                    mastersServing.formUnion(masters.filter { $0.serves(slot) }.map(\.port))
                }
                #expect(mastersServing.count == 3, "the keys' slots lie on \(mastersServing.count) masters")

                try await withClusterSocket(port: try r1.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    try await subscribe(client, to: live.keys)
                    let workers = [r1, r2, r3]
                    let thirds = (0..<3).map { part in
                        live.outcomes.enumerated().filter { $0.offset % 3 == part }.map(\.element)
                    }
                    async let received = receiveAndAck(client, count: live.outcomes.count)
                    let answers = try await withThrowingTaskGroup(of: [String: String].self) { group in
                        for (replica, outcomes) in zip(workers, thirds) {
                            let port = try replica.port
                            group.addTask {
                                try await withClusterSocket(port: port) { worker in
                                    _ = try await worker.hello(role: .worker, clientId: "worker-\(port)")
                                    return try await deliver(outcomes, through: worker, window: 20)
                                }
                            }
                        }
                        group.addTask {
                            // slots move while the outcomes flow
                            try await deployment.reshard(slots: 2000, from: masters[0].port, to: masters[1].port)
                            return [:]
                        }
                        return try await group.reduce(into: [:]) { $0.merge($1) { first, _ in first } }
                    }
                    #expect(answers.count == live.outcomes.count)
                    #expect(
                        answers.values.allSatisfy { $0 == "delivered" },
                        "\(answers.filter { $0.value != "delivered" }.prefix(5))")
                    let got = try await received
                    #expect(got.count == live.outcomes.count)
                    #expect(live.outcomes.allSatisfy { got[$0.id] == $0.key }, "an outcome reached the wrong key")
                }
                // outcomes for keys nobody waits on park in Redis Cluster and reach the next subscriber
                try await withClusterSocket(port: try r3.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "late-worker")
                    let answers = try await deliver(parked.outcomes, through: worker, window: 10)
                    #expect(answers.values.allSatisfy { $0 == "parked" }, "\(answers)")
                }
                try await withClusterSocket(port: try r2.port) { client in
                    _ = try await client.hello(role: .client, clientId: "late-front")
                    for key in parked.keys { client.send(.subscribe(key: key)) }
                    // the parked outcomes come with (or right after) the subscriptions' answers
                    var subscribed = 0
                    var got = Set<String>()
                    while subscribed < parked.keys.count || got.count < parked.outcomes.count {
                        switch try await client.next(timeout: .seconds(30)) {
                        case .subscribed: subscribed += 1
                        case .outcome(let outcome):
                            client.send(.ack(id: outcome.id))
                            got.insert(outcome.id)
                        case let other: throw FixtureError("expected subscribed or an outcome, got \(other)")
                        }
                    }
                    #expect(got == Set(parked.outcomes.map(\.id)))
                }
            }
        }

        /// The master serving part of the client's keys is killed with SIGKILL while a worker on r2 delivers 600
        /// outcomes to a client on r1 (the worker sends again what is answered `unavailable`, as Zeebe would):
        /// every outcome answered `delivered` or `parked` reaches the client, and every outcome is answered
        /// one of the two in the end; the replica that took over serves the keys.
        @Test(.timeLimit(.minutes(5)))
        func killingARedisClusterMasterLosesNoAnsweredOutcome() async throws {
            try await withRedisClusterEnvironment { cluster, deployment in
                let (r1, r2, _) = try await cluster.startThree()
                let load = try outcomeLoad(firstKey: Self.firstKey + 2000, keys: 60, outcomes: 600, idPrefix: "kill")
                let victim = try await deployment.masters()[0]
                let ledger = OutcomeLedger()
                try await withClusterSocket(port: try r1.port) { client in
                    try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await client.hello(role: .client, clientId: "front")
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        try await subscribe(client, to: load.keys)
                        async let receiver: Void = receive(client, into: ledger) {
                            ledger.everyAcknowledgedOutcomeReceived
                        }
                        let (answers, retried) = try await deliverRetryingTransientErrors(
                            load.outcomes, through: worker, window: 20
                        ) { answered in
                            if answered == 150 { try deployment.node(port: victim.port).stop() }
                        }
                        ledger.finish(with: answers)
                        try await receiver
                        #expect(answers.count == load.outcomes.count)
                        #expect(
                            answers.values.allSatisfy { $0 == "delivered" || $0 == "parked" },
                            "\(answers.filter { $0.value != "delivered" && $0.value != "parked" }.prefix(5))")
                        #expect(ledger.acknowledgedIDs.count == load.outcomes.count)
                        for outcome in load.outcomes {
                            #expect(
                                ledger.received[outcome.id] == outcome.key, "\(outcome.id) was answered and must arrive"
                            )
                        }
                        print(
                            "redis cluster master killed under load: \(retried) answers were unavailable and sent again"
                        )
                    }
                }
                try await deployment.waitForFailover(from: victim.port, slots: victim.slots)
            }
        }
    }
}
