import AffinityRedis
import AffinityTestSupport
import Foundation
import NIOCore
import Testing

/// Runs `body` with a fresh redis-server, a connected client and a store on it.
func withRouteStore(
    prefix: String = "affinity:", _ body: @Sendable (RedisRouteStore, RedisServerProcess) async throws -> Void
) async throws {
    try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
        try await withRedisClient(server.configuration()) { (client: RedisClient) async throws -> Void in
            try await body(RedisRouteStore(client: client, prefix: prefix, logger: testLogger("store")), server)
        }
    }
}

func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

@Suite("Redis route store: routes and parked outcomes", .serialized)
struct RedisRouteStoreTests {
    let park = Duration.seconds(300)
    let route = Duration.seconds(60)

    @Test func subscribeReturnsParkedOutcomesInOrderAndKeepsThemUntilAcked() async throws {
        try await withRouteStore { store, _ in
            let payloads = [#"{"a":1}"#, #"{"b":"é\u0000"}"#, #"{"c":[1,2,3]}"#]
            for (index, payload) in payloads.enumerated() {
                let result = try await store.routeOrPark(
                    key: "100", id: "job-\(index)", payload: json(payload), localReplica: "r3", parkTTL: park,
                    maximumParkedPerKey: 10)
                #expect(result == .parked(duplicate: false, routedHere: false))
            }
            let first = try await store.subscribe(key: "100", replica: "r1", clientId: "c1", routeTTL: route)
            #expect(first.map(\.id) == ["job-0", "job-1", "job-2"])
            #expect(first.map(\.payload) == payloads.map(json))
            let again = try await store.subscribe(key: "100", replica: "r2", clientId: "c1", routeTTL: route)
            #expect(again == first, "subscribe reads without taking")
            #expect(try await store.acknowledge(key: "100", id: "job-1"))
            #expect(try await store.acknowledge(key: "100", id: "job-1") == false)
            let remaining = try await store.subscribe(key: "100", replica: "r2", clientId: "c1", routeTTL: route)
            #expect(remaining.map(\.id) == ["job-0", "job-2"])
            #expect(try await store.subscribe(key: "101", replica: "r2", clientId: "c1", routeTTL: route).isEmpty)
        }
    }

    @Test func routeOrParkReturnsTheOwnerOrParksWhenRoutedHere() async throws {
        try await withRouteStore { store, _ in
            _ = try await store.subscribe(key: "7", replica: "r1", clientId: "c", routeTTL: route)
            let elsewhere = try await store.routeOrPark(
                key: "7", id: "j1", payload: json("{}"), localReplica: "r3", parkTTL: park, maximumParkedPerKey: 10)
            #expect(elsewhere == .routed(replica: "r1"))
            let here = try await store.routeOrPark(
                key: "7", id: "j1", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10)
            #expect(here == .parked(duplicate: false, routedHere: true))
        }
    }

    /// The same id with the same payload parks once; with another payload it is a conflict and the first is kept.
    @Test func parkingTheSameIdTwiceIsIdempotentAndAnotherPayloadConflicts() async throws {
        try await withRouteStore { store, _ in
            for attempt in 0..<3 {
                let result = try await store.routeOrPark(
                    key: "9", id: "same", payload: json(#"{"n":1}"#), localReplica: "r1", parkTTL: park,
                    maximumParkedPerKey: 10)
                #expect(result == .parked(duplicate: attempt > 0, routedHere: false))
            }
            #expect(
                try await store.park(
                    key: "9", id: "same", payload: json(#"{"n":1}"#), ifRoutedTo: "r1", parkTTL: park)
                    == .parked(duplicate: true))
            do {
                _ = try await store.park(key: "9", id: "same", payload: json("{}"), ifRoutedTo: "r1", parkTTL: park)
                Issue.record("expected a conflict")
            } catch let error as RouteStoreError {
                #expect(error.code == .conflict)
            }
            let parked = try await store.subscribe(key: "9", replica: "r1", clientId: "c", routeTTL: route)
            #expect(parked == [ParkedOutcome(id: "same", payload: json(#"{"n":1}"#))])
        }
    }

    /// An acknowledged id is remembered: parking it again answers `acknowledged`; ids passed with an unsubscribe
    /// are remembered too and their late parked copy removed.
    @Test func acknowledgedIdsAreNeverParkedAgain() async throws {
        try await withRouteStore { store, _ in
            _ = try await store.routeOrPark(
                key: "12", id: "a", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10)
            #expect(try await store.acknowledge(key: "12", id: "a", parkTTL: park))
            #expect(
                try await store.routeOrPark(
                    key: "12", id: "a", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10)
                    == .acknowledged)
            #expect(
                try await store.park(key: "12", id: "a", payload: json("{}"), ifRoutedTo: "r1", parkTTL: park)
                    == .acknowledged)
            _ = try await store.subscribe(key: "12", replica: "r1", clientId: "c", routeTTL: route)
            _ = try await store.routeOrPark(
                key: "12", id: "b", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10)
            // another client's route stays; the id acknowledged live is remembered and its copy removed
            #expect(
                try await store.unsubscribe(
                    key: "12", replica: "r1", clientId: "other", acknowledged: ["b"], parkTTL: park)
                    == false)
            #expect(try await store.parked(key: "12", pageCount: 10, pageBytes: 1 << 20).outcomes.isEmpty)
            #expect(
                try await store.routeOrPark(
                    key: "12", id: "b", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10)
                    == .acknowledged)
            #expect(try await store.unsubscribe(key: "12", replica: nil, clientId: "", acknowledged: []) == false)
            #expect(try await store.unsubscribe(key: "12", replica: "r1", clientId: "c") == true)
        }
    }

    /// Pages are bounded by count and bytes (the first outcome always comes), and say whether more is parked.
    @Test func parkedOutcomesAreReadInBoundedPages() async throws {
        try await withRouteStore { store, _ in
            for index in 0..<5 {
                _ = try await store.routeOrPark(
                    key: "13", id: "o\(index)", payload: json(#"{"i":\#(index)}"#), localReplica: "r1", parkTTL: park,
                    maximumParkedPerKey: 10)
            }
            let first = try await store.subscribe(
                key: "13", replica: "r1", clientId: "c", routeTTL: route, pageCount: 2, pageBytes: 1 << 20)
            #expect(first.outcomes.map(\.id) == ["o0", "o1"])
            #expect(first.hasMore)
            let bytes = try await store.parked(key: "13", pageCount: 10, pageBytes: 1)
            #expect(bytes.outcomes.map(\.id) == ["o0"])
            #expect(bytes.hasMore)
            let all = try await store.parked(key: "13", pageCount: 10, pageBytes: 1 << 20)
            #expect(all.outcomes.map(\.id) == ["o0", "o1", "o2", "o3", "o4"])
            #expect(!all.hasMore)
            try await store.acknowledge(key: "13", id: "o0")
            #expect(try await store.parked(key: "13", pageCount: 1, pageBytes: 1 << 20).outcomes.map(\.id) == ["o1"])
        }
    }

    /// The bytes parked per key are bounded; acknowledging frees them.
    @Test func enforcesThePerKeyByteBound() async throws {
        try await withRouteStore { store, _ in
            let payload = json(String(repeating: " ", count: 90) + "{}")
            for id in ["a", "b"] {
                _ = try await store.routeOrPark(
                    key: "14", id: id, payload: payload, localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10,
                    maximumParkedBytesPerKey: 200)
            }
            do {
                _ = try await store.routeOrPark(
                    key: "14", id: "c", payload: payload, localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10,
                    maximumParkedBytesPerKey: 200)
                Issue.record("expected the byte bound")
            } catch let error as RouteStoreError {
                #expect(error.code == .parkedBytesLimitReached)
            }
            try await store.acknowledge(key: "14", id: "a")
            #expect(
                try await store.routeOrPark(
                    key: "14", id: "c", payload: payload, localReplica: "r1", parkTTL: park, maximumParkedPerKey: 10,
                    maximumParkedBytesPerKey: 200) == .parked(duplicate: false, routedHere: false))
        }
    }

    @Test func enforcesThePerKeyCap() async throws {
        try await withRouteStore { store, _ in
            for index in 0..<2 {
                _ = try await store.routeOrPark(
                    key: "5", id: "j\(index)", payload: json("{}"), localReplica: "r1", parkTTL: park,
                    maximumParkedPerKey: 2)
            }
            let error = await #expect(throws: RouteStoreError.self) {
                try await store.routeOrPark(
                    key: "5", id: "j2", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 2)
            }
            #expect(error?.code == .parkedLimitReached)
            #expect(error?.message.contains("limit 2") == true)
            // A retried outcome already parked is still accepted at the cap.
            #expect(
                try await store.routeOrPark(
                    key: "5", id: "j1", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 2)
                    == .parked(duplicate: true, routedHere: false))
            try await store.acknowledge(key: "5", id: "j0")
            #expect(
                try await store.routeOrPark(
                    key: "5", id: "j2", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 2)
                    == .parked(duplicate: false, routedHere: false))
        }
    }

    @Test func appliesRouteAndParkTTLs() async throws {
        try await withRouteStore { store, _ in
            let client = store.client
            _ = try await store.subscribe(key: "1", replica: "r1", clientId: "c", routeTTL: .seconds(60))
            let routeTTL = try await client.send(["PTTL", "affinity:{1}:route"]).integer ?? -1
            #expect((59_000...60_000).contains(routeTTL))
            _ = try await store.routeOrPark(
                key: "2", id: "j", payload: json("{}"), localReplica: "r1", parkTTL: .seconds(300),
                maximumParkedPerKey: 5)
            for suffix in ["parked", "outcomes"] {
                let ttl = try await client.send(["PTTL", "affinity:{2}:\(suffix)"]).integer ?? -1
                #expect((299_000...300_000).contains(ttl), "\(suffix) TTL \(ttl)")
            }
            _ = try await store.routeOrPark(
                key: "3", id: "j", payload: json("{}"), localReplica: "r1", parkTTL: .milliseconds(150),
                maximumParkedPerKey: 5)
            _ = try await store.subscribe(key: "4", replica: "r1", clientId: "c", routeTTL: .milliseconds(150))
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await store.subscribe(key: "3", replica: "r1", clientId: "c", routeTTL: route).isEmpty)
            #expect(
                try await store.routeOrPark(
                    key: "4", id: "j", payload: json("{}"), localReplica: "r3", parkTTL: park, maximumParkedPerKey: 5)
                    == .parked(duplicate: false, routedHere: false), "an expired route no longer routes")
        }
    }

    @Test func unsubscribeDeletesOnlyItsOwnRoute() async throws {
        try await withRouteStore { store, _ in
            _ = try await store.subscribe(key: "8", replica: "r1", clientId: "c1", routeTTL: route)
            #expect(try await store.unsubscribe(key: "8", replica: "r1", clientId: "other") == false)
            #expect(try await store.unsubscribe(key: "8", replica: "r2", clientId: "c1") == false)
            #expect(
                try await store.routeOrPark(
                    key: "8", id: "j", payload: json("{}"), localReplica: "r3", parkTTL: park, maximumParkedPerKey: 5)
                    == .routed(replica: "r1"))
            #expect(try await store.unsubscribe(key: "8", replica: "r1", clientId: "c1"))
            #expect(
                try await store.routeOrPark(
                    key: "8", id: "j", payload: json("{}"), localReplica: "r3", parkTTL: park, maximumParkedPerKey: 5)
                    == .parked(duplicate: false, routedHere: false))
        }
    }

    @Test func parkAfterAFailedForwardChecksTheRoute() async throws {
        try await withRouteStore { store, _ in
            _ = try await store.subscribe(key: "20", replica: "r1", clientId: "c", routeTTL: route)
            #expect(
                try await store.park(key: "20", id: "a", payload: json("{}"), ifRoutedTo: "r1", parkTTL: park)
                    == .parked(duplicate: false))
            _ = try await store.subscribe(key: "20", replica: "r2", clientId: "c", routeTTL: route)
            #expect(
                try await store.park(key: "20", id: "b", payload: json("{}"), ifRoutedTo: "r1", parkTTL: park)
                    == .rerouted(replica: "r2"))
            #expect(
                try await store.park(key: "21", id: "c", payload: json("{}"), ifRoutedTo: "r1", parkTTL: park)
                    == .parked(duplicate: false))
            let parked = try await store.subscribe(key: "20", replica: "r2", clientId: "c", routeTTL: route)
            #expect(parked.map(\.id) == ["a"])
        }
    }

    @Test func refreshRoutesNeverStealsAndRestoresAfterAnEmptyRestart() async throws {
        try await withRouteStore { store, _ in
            _ = try await store.subscribe(key: "30", replica: "r1", clientId: "c", routeTTL: .seconds(5))
            _ = try await store.subscribe(key: "31", replica: "r2", clientId: "d", routeTTL: .seconds(5))
            let results = await store.refreshRoutes(
                [
                    RouteEntry(key: "30", replica: "r1", clientId: "c"),
                    RouteEntry(key: "31", replica: "r1", clientId: "c"),
                    RouteEntry(key: "32", replica: "r1", clientId: "c"),
                    RouteEntry(key: "bad}key", replica: "r1", clientId: "c"),
                ], routeTTL: .seconds(60))
            #expect(results.count == 4)
            #expect((try? results[0].get()) == .refreshed)
            #expect((try? results[1].get()) == .ownedByAnotherReplica("r2"))
            #expect((try? results[2].get()) == .restored)
            #expect(results[3].failureCode == .invalidKey)
            let ttl = try await store.client.send(["PTTL", "affinity:{30}:route"]).integer ?? -1
            #expect(ttl > 5_000, "refreshed to the new TTL")
            #expect(
                try await store.routeOrPark(
                    key: "31", id: "j", payload: json("{}"), localReplica: "r3", parkTTL: park, maximumParkedPerKey: 5)
                    == .routed(replica: "r2"), "the other replica's route is untouched")

            // Redis restarted empty: every route is written back in one pipeline, even with the script cache gone.
            _ = try await store.client.send(["FLUSHALL"])
            _ = try await store.client.send(["SCRIPT", "FLUSH"])
            let entries = (0..<2000).map { RouteEntry(key: String(1000 + $0), replica: "r1", clientId: "c\($0)") }
            let restored = await store.refreshRoutes(entries, routeTTL: .seconds(60))
            #expect(restored.allSatisfy { (try? $0.get()) == .restored })
            #expect(try await store.client.send(["DBSIZE"]) == .integer(2000))
        }
    }

    @Test func usesHashTaggedKeysUnderTheConfiguredPrefix() async throws {
        try await withRouteStore(prefix: "tenant-a:") { store, _ in
            _ = try await store.subscribe(key: "2251799813685249", replica: "r1", clientId: "c", routeTTL: route)
            _ = try await store.routeOrPark(
                key: "2251799813685250", id: "j", payload: json("{}"), localReplica: "r1", parkTTL: park,
                maximumParkedPerKey: 5)
            try await store.registerReplica(
                id: "r1", peerAddress: "10.0.0.1:7443", instanceNonce: "n", ttl: .seconds(10))
            let keys = try await store.client.send(["KEYS", "*"]).array?.compactMap(\.string).sorted()
            #expect(
                keys == [
                    "tenant-a:replica:{r1}", "tenant-a:{2251799813685249}:route",
                    "tenant-a:{2251799813685250}:bytes", "tenant-a:{2251799813685250}:outcomes",
                    "tenant-a:{2251799813685250}:parked",
                ])
        }
    }

    @Test func rejectsUnusableKeysAndIds() async throws {
        try await withRouteStore { store, _ in
            for key in ["", "a{b", "a}b", String(repeating: "9", count: 300)] {
                let error = await #expect(throws: RouteStoreError.self) {
                    _ = try await store.subscribe(key: key, replica: "r1", clientId: "c", routeTTL: route)
                }
                #expect(error?.code == .invalidKey)
            }
            let error = await #expect(throws: RouteStoreError.self) {
                _ = try await store.routeOrPark(
                    key: "1", id: "", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 5)
            }
            #expect(error?.code == .invalidKey)
        }
    }

    @Test func eachOperationIsOneRedisCommand() async throws {
        try await withRouteStore { store, _ in
            // Warm the script cache, then count commands.
            _ = try await store.subscribe(key: "1", replica: "r1", clientId: "c", routeTTL: route)
            _ = try await store.routeOrPark(
                key: "1", id: "w", payload: json("{}"), localReplica: "r1", parkTTL: park, maximumParkedPerKey: 500)
            try await store.acknowledge(key: "1", id: "w")
            _ = try await store.client.send(["CONFIG", "RESETSTAT"])
            for index in 0..<100 {
                _ = try await store.routeOrPark(
                    key: "50", id: "j\(index)", payload: json("{}"), localReplica: "r3", parkTTL: park,
                    maximumParkedPerKey: 500)
                _ = try await store.subscribe(key: "50", replica: "r1", clientId: "c", routeTTL: route)
                try await store.acknowledge(key: "50", id: "j\(index)")
            }
            let stats = try await store.client.send(["INFO", "commandstats"]).string ?? ""
            // commandstats also counts the commands the scripts run inside Redis; the client sent only EVALSHA.
            let lines = stats.split(separator: "\r\n").filter { $0.hasPrefix("cmdstat_") }
            #expect(lines.contains { $0.hasPrefix("cmdstat_evalsha:calls=300,") }, "\(lines)")
            #expect(!lines.contains { $0.hasPrefix("cmdstat_script") || $0.hasPrefix("cmdstat_eval:") }, "\(lines)")
        }
    }
}

extension Result {
    var failureCode: RouteStoreError.Code? {
        if case .failure(let error) = self { return (error as? RouteStoreError)?.code }
        return nil
    }
}
