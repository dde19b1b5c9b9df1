import AffinityCluster
import AffinityProtocol
import AffinityRedis
import AffinityServer
import AffinityTestSupport
import Foundation
import Testing

@Suite("Redis outcome store: races and the replica records", .serialized)
struct RedisRaceAndRegistryTests {
    @Test func routeOrParkAgainstSubscribeFromTwoConnectionsNeverLosesAnOutcome() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            try await withRedisClient(server.configuration()) { (subscriberClient: RedisClient) async throws -> Void in
                try await withRedisClient(server.configuration()) { (workerClient: RedisClient) async throws -> Void in
                    let subscriber = outcomeStore(subscriberClient)
                    let worker = outcomeStore(workerClient)
                    let keys = (0..<500).map { instance(5_000_000 + Int64($0)) }
                    let outcomes = try await withThrowingTaskGroup(of: (ProcessInstanceKey, Bool, Bool).self) { group in
                        for key in keys {
                            group.addTask {
                                let parked = try await subscriber.subscribe(
                                    key: key, route: route("r1"), page: wholePage)
                                return (key, false, parked.outcomes.contains { $0.id == "job-\(key)" })
                            }
                            group.addTask {
                                let result = try await worker.routeOrPark(
                                    outcome: try outcome(key.value, "job-\(key)"), localReplica: "r3")
                                return (key, true, result == .routed(route("r1")))
                            }
                        }
                        var seen: [ProcessInstanceKey: (routed: Bool, taken: Bool)] = [:]
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
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let records = RedisReplicaRecords(client: client, logger: testLogger("records"))
            #expect(
                try await records.register(
                    id: "r1", peerAddress: "10.0.0.1:7443", instanceNonce: "A", ttl: .seconds(10))
                    == .registered)
            #expect(
                try await records.register(
                    id: "r1", peerAddress: "10.0.0.1:7443", instanceNonce: "A", ttl: .seconds(10))
                    == .registered)
            #expect(
                try await records.register(
                    id: "r1", peerAddress: "10.0.0.2:7443", instanceNonce: "B", ttl: .seconds(10))
                    == .taken(address: "10.0.0.1:7443", instanceNonce: "A"))
            #expect(try await records.peerAddress(of: "r1") == "10.0.0.1:7443")
            #expect(try await records.peerAddress(of: "r9") == nil)
            #expect(try await records.heartbeat(id: "r1", instanceNonce: "A", ttl: .seconds(10)) == .refreshed)
            #expect(try await records.heartbeat(id: "r1", instanceNonce: "B", ttl: .seconds(10)) == .takenOver)
            #expect(try await records.deregister(id: "r1", instanceNonce: "B") == false)
            #expect(try await records.peerAddress(of: "r1") == "10.0.0.1:7443")
            #expect(try await records.deregister(id: "r1", instanceNonce: "A"))
            #expect(try await records.heartbeat(id: "r1", instanceNonce: "A", ttl: .seconds(10)) == .expired)
            #expect(
                try await records.register(
                    id: "r1", peerAddress: "10.0.0.2:7443", instanceNonce: "B", ttl: .seconds(10))
                    == .registered)
            #expect(try await records.peerAddress(of: "r1") == "10.0.0.2:7443")
            // an instance proven gone is replaced
            #expect(
                try await records.register(
                    id: "r1", peerAddress: "10.0.0.3:7443", instanceNonce: "C", ttl: .seconds(10), replacing: "B")
                    == .registered)
            #expect(try await records.peerAddress(of: "r1") == "10.0.0.3:7443")
        }
    }

    @Test func aRegistrationExpiresWithoutHeartbeats() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let records = RedisReplicaRecords(client: client, logger: testLogger("records"))
            _ = try await records.register(id: "r2", peerAddress: "a:1", instanceNonce: "A", ttl: .milliseconds(300))
            let ttl = try await client.send(["PTTL", "affinity:replica:{r2}"]).integer ?? -1
            #expect((1...300).contains(ttl))
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await records.peerAddress(of: "r2") == nil)
            #expect(try await records.heartbeat(id: "r2", instanceNonce: "A", ttl: .seconds(1)) == .expired)
            _ = try await records.register(id: "r2", peerAddress: "b:1", instanceNonce: "B", ttl: .seconds(10))
            #expect(try await records.peerAddress(of: "r2") == "b:1")
        }
    }

    @Test func storeOperationsFailFastWhileRedisIsDownAndWorkAfterItReturns() async throws {
        try await withRedisStoreClient { (client: RedisClient, server: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            let events = client.connectionEvents()
            _ = try await store.subscribe(key: instance(1), route: route("r1"), page: wholePage)
            server.stop()
            try await waitFor(events, timeout: .seconds(5)) { if case .disconnected = $0 { true } else { false } }
            let started = ContinuousClock.now
            let error = await #expect(throws: AffinityError.self) {
                try await store.routeOrPark(outcome: try outcome(1, "j"), localReplica: "r3")
            }
            #expect(error?.code == .unavailable)
            #expect(ContinuousClock.now - started < .seconds(1), "failed at once")
            try await server.start()
            // the reconnect back-off grows while Redis is down; generous for a loaded machine
            try await waitFor(events, timeout: .seconds(30)) {
                if case .connected(let generation) = $0 { generation >= 2 } else { false }
            }
            // Empty after the restart: the route is written back, and the script cache is reloaded on NOSCRIPT.
            #expect(try await store.refreshRoutes([instance(1): route("r1")]) == [])
            #expect(try await store.routeOrPark(outcome: outcome(1, "j"), localReplica: "r3") == .routed(route("r1")))
        }
    }
}
