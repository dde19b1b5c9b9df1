import AffinityRedis
import AffinityTestSupport
import Foundation
import NIOCore
import Testing

@Suite("Redis route store: races and the replica registry", .serialized)
struct RedisRouteRaceAndRegistryTests {
    @Test func routeOrParkAgainstSubscribeFromTwoConnectionsNeverLosesAnOutcome() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            try await withRedisClient(server.configuration()) { (subscriberClient: RedisClient) async throws -> Void in
                try await withRedisClient(server.configuration()) { (workerClient: RedisClient) async throws -> Void in
                    let subscriber = RedisRouteStore(client: subscriberClient, logger: testLogger("r1"))
                    let worker = RedisRouteStore(client: workerClient, logger: testLogger("r3"))
                    let keys = (0..<500).map { String(5_000_000 + $0) }
                    let outcomes = try await withThrowingTaskGroup(of: (String, Bool, Bool).self) { group in
                        for key in keys {
                            group.addTask {
                                let parked = try await subscriber.subscribe(
                                    key: key, replica: "r1", clientId: "c", routeTTL: .seconds(60))
                                return (key, false, parked.contains { $0.id == "job-\(key)" })
                            }
                            group.addTask {
                                let result = try await worker.routeOrPark(
                                    key: key, id: "job-\(key)", payload: ByteBuffer(string: "{}"), localReplica: "r3",
                                    parkTTL: .seconds(60), maximumParkedPerKey: 10)
                                return (key, true, result == .routed(replica: "r1"))
                            }
                        }
                        var seen: [String: (routed: Bool, taken: Bool)] = [:]
                        for try await (key, fromWorker, value) in group {
                            var entry = seen[key] ?? (false, false)
                            if fromWorker { entry.routed = value } else { entry.taken = value }
                            seen[key] = entry
                        }
                        return seen
                    }
                    #expect(outcomes.count == keys.count)
                    // Exactly one path delivers each outcome: forwarded to the route, or read by the subscribe.
                    let bad = outcomes.filter { $0.value.routed == $0.value.taken }
                    #expect(bad.isEmpty, "lost or doubled: \(bad.keys.sorted().prefix(5))")
                    let routed = outcomes.values.filter(\.routed).count
                    #expect(routed + outcomes.values.filter(\.taken).count == keys.count)
                }
            }
        }
    }

    @Test func registryRefusesASecondLiveInstanceOfAnId() async throws {
        try await withRouteStore { store, _ in
            try await store.registerReplica(
                id: "r1", peerAddress: "10.0.0.1:7443", instanceNonce: "A", ttl: .seconds(10))
            try await store.registerReplica(
                id: "r1", peerAddress: "10.0.0.1:7443", instanceNonce: "A", ttl: .seconds(10))
            let error = await #expect(throws: RouteStoreError.self) {
                try await store.registerReplica(
                    id: "r1", peerAddress: "10.0.0.2:7443", instanceNonce: "B", ttl: .seconds(10))
            }
            #expect(error?.code == .replicaIdInUse)
            #expect(error?.message.contains("10.0.0.1:7443") == true)
            #expect(try await store.lookupReplica(id: "r1") == "10.0.0.1:7443")
            #expect(try await store.lookupReplica(id: "r9") == nil)
            #expect(try await store.heartbeat(id: "r1", instanceNonce: "A", ttl: .seconds(10)) == .refreshed)
            #expect(try await store.heartbeat(id: "r1", instanceNonce: "B", ttl: .seconds(10)) == .takenOver)
            #expect(try await store.deregisterReplica(id: "r1", instanceNonce: "B") == false)
            #expect(try await store.lookupReplica(id: "r1") == "10.0.0.1:7443")
            #expect(try await store.deregisterReplica(id: "r1", instanceNonce: "A"))
            #expect(try await store.heartbeat(id: "r1", instanceNonce: "A", ttl: .seconds(10)) == .expired)
            try await store.registerReplica(
                id: "r1", peerAddress: "10.0.0.2:7443", instanceNonce: "B", ttl: .seconds(10))
            #expect(try await store.lookupReplica(id: "r1") == "10.0.0.2:7443")
        }
    }

    @Test func aRegistrationExpiresWithoutHeartbeats() async throws {
        try await withRouteStore { store, _ in
            try await store.registerReplica(id: "r2", peerAddress: "a:1", instanceNonce: "A", ttl: .milliseconds(300))
            let ttl = try await store.client.send(["PTTL", "affinity:replica:{r2}"]).integer ?? -1
            #expect((1...300).contains(ttl))
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await store.lookupReplica(id: "r2") == nil)
            #expect(try await store.heartbeat(id: "r2", instanceNonce: "A", ttl: .seconds(1)) == .expired)
            try await store.registerReplica(id: "r2", peerAddress: "b:1", instanceNonce: "B", ttl: .seconds(10))
            #expect(try await store.lookupReplica(id: "r2") == "b:1")
        }
    }

    @Test func storeOperationsFailFastWhileRedisIsDownAndWorkAfterItReturns() async throws {
        try await withRouteStore { store, server in
            let events = store.client.connectionEvents()
            _ = try await store.subscribe(key: "1", replica: "r1", clientId: "c", routeTTL: .seconds(60))
            server.stop()
            try await waitFor(events, timeout: .seconds(5)) { if case .disconnected = $0 { true } else { false } }
            let error = await #expect(throws: RedisError.self) {
                _ = try await store.routeOrPark(
                    key: "1", id: "j", payload: ByteBuffer(string: "{}"), localReplica: "r3", parkTTL: .seconds(60),
                    maximumParkedPerKey: 5)
            }
            #expect(error?.code == .connection)
            try await server.start()
            // the reconnect back-off grows while Redis is down; generous for a loaded machine
            try await waitFor(events, timeout: .seconds(30)) {
                if case .connected(let generation) = $0 { generation >= 2 } else { false }
            }
            // Empty after the restart: the route is written back, and the script cache is reloaded on NOSCRIPT.
            let restored = await store.refreshRoutes(
                [RouteEntry(key: "1", replica: "r1", clientId: "c")], routeTTL: .seconds(60))
            #expect((try? restored.first?.get()) == .restored)
            #expect(
                try await store.routeOrPark(
                    key: "1", id: "j", payload: ByteBuffer(string: "{}"), localReplica: "r3", parkTTL: .seconds(60),
                    maximumParkedPerKey: 5) == .routed(replica: "r1"))
        }
    }
}
