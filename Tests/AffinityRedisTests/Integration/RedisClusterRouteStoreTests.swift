import AffinityRedis
import AffinityTestSupport
import Foundation
import NIOCore
import Testing

/// The route store, unchanged, on a Redis Cluster: its scripts go to the master of their `{K}` slot, `WAIT`
/// to the master that ran them, and its pipelined route refresh is split per master and answered in order.
@Suite("Redis route store on a Redis Cluster", .serialized)
struct RedisClusterRouteStoreTests {
    @Test(.timeLimit(.minutes(2)))
    func everyOperationWorksOnKeysOfEveryMaster() async throws {
        try await withRedisClusterDeployment { deployment in
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let store = RedisRouteStore(
                    client: client, replication: RedisReplicationRequirement(replicas: 1, timeout: .seconds(2)),
                    logger: testLogger("store"))
                let keys = (0..<300).map { String(2_251_799_813_685_249 + $0) }
                let masters = try await deployment.masters()
                for master in masters {
                    #expect(
                        keys.contains { master.serves(RedisClusterSlot.slot(forKey: "affinity:{\($0)}:route")) },
                        "some key lives on the master on port \(master.port)")
                }
                for key in keys {
                    let parked = try await store.routeOrPark(
                        key: key, id: "job-\(key)", payload: ByteBuffer(string: #"{"k":\#(key)}"#), localReplica: "r1",
                        parkTTL: .seconds(300), maximumParkedPerKey: 10)
                    #expect(parked == .parked(duplicate: false, routedHere: false))
                }
                for key in keys {
                    let outcomes = try await store.subscribe(
                        key: key, replica: "r2", clientId: "c", routeTTL: .seconds(60))
                    #expect(outcomes.map(\.id) == ["job-\(key)"])
                    #expect(try await store.acknowledge(key: key, id: "job-\(key)"))
                }
                let ours = await store.refreshRoutes(
                    keys.map { RouteEntry(key: $0, replica: "r2", clientId: "c") }, routeTTL: .seconds(60))
                #expect(ours.map { try? $0.get() } == keys.map { _ in .refreshed })
                let theirs = await store.refreshRoutes(
                    keys.map { RouteEntry(key: $0, replica: "r3", clientId: "d") }, routeTTL: .seconds(60))
                #expect(theirs.map { try? $0.get() } == keys.map { _ in .ownedByAnotherReplica("r2") })
                for key in keys.prefix(30) {
                    let routed = try await store.routeOrPark(
                        key: key, id: "late-\(key)", payload: ByteBuffer(string: "{}"), localReplica: "r1",
                        parkTTL: .seconds(300), maximumParkedPerKey: 10)
                    #expect(routed == .routed(replica: "r2"))
                }
                for master in masters {
                    let moved = try await deployment.node(port: master.port).command("INFO", "errorstats")
                    #expect(!moved.contains("errorstat_MOVED"), "every script went to its master")
                }
            }
        }
    }
}
