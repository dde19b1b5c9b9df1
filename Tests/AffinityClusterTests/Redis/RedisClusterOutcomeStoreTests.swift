import AffinityCluster
import AffinityProtocol
import AffinityRedis
import AffinityServer
import AffinityTestSupport
import Foundation
import Testing

/// The outcome store, unchanged, on a Redis Cluster: its scripts go to the master of their `{K}` slot, `WAIT`
/// to the master that ran them, and its pipelined route refresh is split per master and answered in order.
@Suite("Redis outcome store on a Redis Cluster", .serialized)
struct RedisClusterOutcomeStoreTests {
    @Test(.timeLimit(.minutes(2)))
    func everyOperationWorksOnKeysOfEveryMaster() async throws {
        try await withRedisClusterDeployment { deployment in
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let store = outcomeStore(
                    client, replication: RedisReplicationRequirement(replicas: 1, timeout: .seconds(2)))
                let keys = (0..<300).map { instance(2_251_799_813_685_249 + Int64($0)) }
                let masters = try await deployment.masters()
                for master in masters {
                    #expect(
                        keys.contains { master.serves(RedisClusterSlot.slot(forKey: "affinity:{\($0)}:route")) },
                        "some key lives on the master on port \(master.port)")
                }
                for key in keys {
                    let parked = try await store.routeOrPark(
                        outcome: outcome(key.value, "job-\(key)", #"{"k":\#(key)}"#), localReplica: "r1")
                    #expect(parked == .parked(duplicate: false))
                }
                for key in keys {
                    let page = try await store.subscribe(key: key, route: route("r2", "c"), page: wholePage)
                    #expect(page.outcomes.map(\.id) == ["job-\(key)"])
                    try await store.acknowledge(key: key, id: "job-\(key)")
                }
                let routes = Dictionary(uniqueKeysWithValues: keys.map { ($0, route("r2", "c")) })
                #expect(try await store.refreshRoutes(routes) == [], "refreshed, nothing parked any more")
                let theirs = Dictionary(uniqueKeysWithValues: keys.map { ($0, route("r3", "d")) })
                #expect(try await store.refreshRoutes(theirs) == [], "owned by r2: left alone")
                for key in keys.prefix(30) {
                    let routed = try await store.routeOrPark(
                        outcome: outcome(key.value, "late-\(key)"), localReplica: "r1")
                    #expect(routed == .routed(route("r2", "c")), "r3's refresh did not take the route")
                }
                for master in masters {
                    let moved = try await deployment.node(port: master.port).command("INFO", "errorstats")
                    #expect(!moved.contains("errorstat_MOVED"), "every script went to its master")
                }
            }
        }
    }
}
