import AffinityCluster
import AffinityProtocol
import AffinityRedis
import AffinityServer
import AffinityTestSupport
import Foundation
import Testing

/// `WAIT` behind parks and acknowledgements, against a real master, replica and three sentinels.
@Suite("Redis replication confirmation (WAIT)", .serialized)
struct RedisReplicationWaitTests {
    /// Parks and acks are confirmed by the replica; without a replica a park fails `unavailable` (caused by
    /// the client's `replication` error) after the WAIT timeout (it is on the master, but nobody may promise
    /// it survives); a routed outcome wrote nothing and waits for nobody.
    @Test(.timeLimit(.minutes(2)))
    func parksWaitForTheReplicaAndFailShortWithoutIt() async throws {
        try await withRedisSentinelDeployment { deployment in
            let master = try await deployment.currentMaster()
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let store = outcomeStore(
                    client, replication: RedisReplicationRequirement(replicas: 1, timeout: .milliseconds(300)))
                #expect(
                    try await store.routeOrPark(outcome: outcome(1, "a"), localReplica: "r1")
                        == .parked(duplicate: false))
                try await store.acknowledge(key: instance(1), id: "a")
                _ = try await store.subscribe(key: instance(2), route: route("r2"), page: wholePage)

                for replica in deployment.nodes where replica.port != master { replica.stop() }
                let started = ContinuousClock.now
                let error = await #expect(throws: AffinityError.self) {
                    try await store.routeOrPark(outcome: try outcome(1, "b"), localReplica: "r1")
                }
                #expect(error?.code == .unavailable)
                #expect((error?.cause as? RedisError)?.code == .replication)
                #expect(
                    (error?.cause as? RedisError)?.message.contains("confirmed by 0 of 1 replicas") == true,
                    "\(String(describing: error))")
                #expect(ContinuousClock.now - started >= .milliseconds(300))
                let again = await #expect(throws: AffinityError.self) {
                    try await store.routeOrPark(outcome: try outcome(1, "b"), localReplica: "r1")
                }
                #expect(
                    (again?.cause as? RedisError)?.code == .replication,
                    "a retried park (a duplicate) is not confirmed either")
                let ackError = await #expect(throws: AffinityError.self) {
                    try await store.acknowledge(key: instance(1), id: "b")
                }
                #expect(ackError?.code == .unavailable)
                #expect((ackError?.cause as? RedisError)?.code == .replication)
                #expect(
                    try await store.routeOrPark(outcome: outcome(2, "c"), localReplica: "r1") == .routed(route("r2")))
            }
        }
    }

    /// Parks run concurrently while the master is killed with SIGKILL: every park that was confirmed (WAIT
    /// reached the replica) is parked on the promoted replica afterwards.
    @Test(.timeLimit(.minutes(2)))
    func confirmedParksSurviveAKill9OfTheMaster() async throws {
        try await withRedisSentinelDeployment { deployment in
            let master = try await deployment.currentMaster()
            let client = RedisClient(configuration: try deployment.configuration(), logger: testLogger("wait"))
            let events = client.connectionEvents()
            let store = outcomeStore(
                client, replication: RedisReplicationRequirement(replicas: 1, timeout: .seconds(1)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { group.cancelAll() }
                try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                let masterNode = try deployment.node(port: master)
                let indices = try await withThrowingTaskGroup(of: [Int].self) { parks in
                    for worker in 0..<8 {
                        parks.addTask {
                            var confirmed: [Int] = []
                            for index in stride(from: worker, to: 4000, by: 8) {
                                let done = try? await store.routeOrPark(
                                    outcome: try outcome(10_000 + Int64(index), "job-\(index)", #"{"i":\#(index)}"#),
                                    localReplica: "r1")
                                if case .parked = done { confirmed.append(index) }
                                if index == 1000 { masterNode.stop() }
                            }
                            return confirmed
                        }
                    }
                    return try await parks.reduce(into: []) { $0 += $1 }
                }
                try await deployment.waitForFailover(from: master)
                try await waitFor(events, timeout: .seconds(30)) { event in
                    if case .connected(let generation) = event { generation > 1 } else { false }
                }
                #expect(indices.count > 900, "parks confirmed before the kill: \(indices.count)")
                var missing: [Int] = []
                for index in indices {
                    let page = try await store.parked(key: instance(10_000 + Int64(index)), page: wholePage)
                    if page.outcomes.map(\.id) != ["job-\(index)"] { missing.append(index) }
                }
                #expect(missing.isEmpty, "confirmed parks lost in the failover: \(missing)")
                print("WAIT: \(indices.count) parks confirmed, \(missing.count) lost after kill -9 of the master")
            }
        }
    }
}
