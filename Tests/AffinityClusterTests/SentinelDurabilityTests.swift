import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// What a worker is told when Redis cannot confirm a park on a replica (`WAIT`), with a real Sentinel
    /// deployment and an `affinity-server` process.
    @Suite("Redis replication confirmation, end to end")
    struct SentinelDurabilityTests {
        static let firstKey: Int64 = 2_251_799_813_707_000

        func key(_ offset: Int64) -> ProcessInstanceKey { ProcessInstanceKey(Self.firstKey + offset)! }

        /// The Redis replica is down: a park the master alone holds could vanish in a failover, so the worker
        /// is answered `unavailable` (it retries), never `parked`. A delivery to a live subscriber needs no park
        /// and is answered `delivered`. Once the Redis replica is back, the worker's retry is parked and
        /// reaches the key's subscriber.
        @Test(.timeLimit(.minutes(3)))
        func anUnconfirmedParkIsAnsweredUnavailableNotParked() async throws {
            try await withSentinelClusterEnvironment { cluster, deployment in
                let r1 = try await cluster.start(id: "r1", arguments: ["--redis-wait-timeout", "300ms"])
                let master = try await deployment.currentMaster()
                let replicaNode = try #require(deployment.nodes.first { $0.port != master })
                try await withClusterSocket(port: try r1.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker")
                    let unsubscribed = try Outcome(id: "nobody-waits", key: key(1), variables: Array("{}".utf8))
                    #expect(
                        try await deliver([unsubscribed], through: worker, window: 1) == [unsubscribed.id: "parked"])

                    replicaNode.stop()
                    let retried = try Outcome(id: "retried", key: key(2), variables: Array(#"{"n":2}"#.utf8))
                    #expect(
                        try await deliver([retried], through: worker, window: 1) == [retried.id: "unavailable"],
                        "the master alone holds the park")

                    try await withClusterSocket(port: try r1.port) { client in
                        _ = try await client.hello(role: .client, clientId: "front")
                        try await subscribe(client, to: [key(3)])
                        let live = try Outcome(id: "live", key: key(3), variables: Array("{}".utf8))
                        async let answers = deliver([live], through: worker, window: 1)
                        #expect(try await receiveAndAck(client, count: 1) == [live.id: key(3)])
                        #expect(try await answers == [live.id: "delivered"], "a live delivery parks nothing")
                    }

                    try await replicaNode.start(additionalArguments: ["--replicaof", "127.0.0.1", String(master)])
                    try await deployment.waitForReplicas(1, of: master)
                    // the worker's retry, as Zeebe hands the job out again
                    #expect(try await deliver([retried], through: worker, window: 1) == [retried.id: "parked"])
                    try await withClusterSocket(port: try r1.port) { client in
                        _ = try await client.hello(role: .client, clientId: "front-2")
                        try await subscribe(client, to: [key(2)])
                        #expect(try await receiveAndAck(client, count: 1) == [retried.id: key(2)])
                    }
                }
            }
        }
    }
}
