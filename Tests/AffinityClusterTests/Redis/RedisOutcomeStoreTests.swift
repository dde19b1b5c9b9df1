import AffinityCluster
import AffinityProtocol
import AffinityRedis
import AffinityServer
import AffinityTestSupport
import Foundation
import Testing

/// Runs `body` with a fresh redis-server and a connected client.
func withRedisStoreClient(_ body: @Sendable (RedisClient, RedisServerProcess) async throws -> Void) async throws {
    try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
        try await withRedisClient(server.configuration()) { (client: RedisClient) async throws -> Void in
            try await body(client, server)
        }
    }
}

/// A store on `client` with these bounds (the defaults: a route TTL of 60 s, a park TTL of 300 s, 10 parked
/// outcomes per key, no byte bound to speak of).
func outcomeStore(
    _ client: RedisClient, prefix: String = "affinity:", replication: RedisReplicationRequirement = .none,
    routeTTL: Duration = .seconds(60), parkTTL: Duration = .seconds(300), maxParkedPerKey: Int = 10,
    maxParkedBytesPerKey: Int = Int(Int32.max)
) -> RedisOutcomeStore {
    RedisOutcomeStore(
        client: client, keys: RedisKeySchema(prefix: prefix), replication: replication, routeTTL: routeTTL,
        parkTTL: parkTTL, maxParkedPerKey: maxParkedPerKey, maxParkedBytesPerKey: maxParkedBytesPerKey,
        logger: testLogger("store"))
}

/// Process instance `key` (a decimal literal of the test).
func instance(_ key: Int64) -> ProcessInstanceKey { ProcessInstanceKey(key)! }

/// An outcome `id` of `key` with `variables` (a JSON object).
func outcome(_ key: Int64, _ id: String, _ variables: String = "{}") throws -> Outcome {
    try Outcome(id: id, key: instance(key), variables: Array(variables.utf8))
}

/// A route to client `client` on replica `replica`.
func route(_ replica: String, _ client: String = "c") -> Route { Route(replicaID: replica, clientID: client) }

/// The page limit of the tests that expect few outcomes.
let wholePage = ParkedPageLimit(count: 1000, bytes: Int(Int32.max))

@Suite("Redis outcome store: routes and parked outcomes", .serialized)
struct RedisOutcomeStoreTests {
    @Test func subscribeReturnsParkedOutcomesInOrderAndKeepsThemUntilAcked() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            let variables = [#"{"a":1}"#, #"{"b":"é\u0000"}"#, #"{"c":[1,2,3]}"#]
            let outcomes = try variables.enumerated().map { try outcome(100, "job-\($0.offset)", $0.element) }
            for parked in outcomes {
                #expect(try await store.routeOrPark(outcome: parked, localReplica: "r3") == .parked(duplicate: false))
            }
            let first = try await store.subscribe(key: instance(100), route: route("r1", "c1"), page: wholePage)
            #expect(first.outcomes == outcomes)
            #expect(!first.hasMore)
            let again = try await store.subscribe(key: instance(100), route: route("r2", "c1"), page: wholePage)
            #expect(again == first, "subscribe reads without taking")
            try await store.acknowledge(key: instance(100), id: "job-1")
            try await store.acknowledge(key: instance(100), id: "job-1")
            let remaining = try await store.subscribe(key: instance(100), route: route("r2", "c1"), page: wholePage)
            #expect(remaining.outcomes.map(\.id) == ["job-0", "job-2"])
            #expect(try await store.subscribe(key: instance(101), route: route("r2", "c1"), page: wholePage) == .empty)
        }
    }

    /// The route comes back whole (replica and client), and a park for the route's own replica parks.
    @Test func routeOrParkReturnsTheOwnerOrParksWhenRoutedHere() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            _ = try await store.subscribe(key: instance(7), route: route("r1", "client-7"), page: wholePage)
            #expect(
                try await store.routeOrPark(outcome: outcome(7, "j1"), localReplica: "r3")
                    == .routed(route("r1", "client-7")))
            #expect(
                try await store.routeOrPark(outcome: outcome(7, "j1"), localReplica: "r1") == .parked(duplicate: false))
        }
    }

    /// The same id with the same payload parks once; with another payload it is a conflict and the first is kept.
    @Test func parkingTheSameIdTwiceIsIdempotentAndAnotherPayloadConflicts() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            let first = try outcome(9, "same", #"{"n":1}"#)
            for attempt in 0..<3 {
                #expect(
                    try await store.routeOrPark(outcome: first, localReplica: "r1") == .parked(duplicate: attempt > 0))
            }
            #expect(try await store.park(outcome: first, ifRoutedTo: "r1") == .parked(duplicate: true))
            let error = await #expect(throws: AffinityError.self) {
                try await store.park(outcome: try outcome(9, "same"), ifRoutedTo: "r1")
            }
            #expect(error?.code == .conflict)
            #expect(error?.ref == "same")
            let parked = try await store.subscribe(key: instance(9), route: route("r1"), page: wholePage)
            #expect(parked.outcomes == [first])
        }
    }

    /// An acknowledged id is remembered: parking it again answers `alreadyAcknowledged`; ids passed with an
    /// unsubscribe are remembered too and their late parked copy removed.
    @Test func acknowledgedIdsAreNeverParkedAgain() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            _ = try await store.routeOrPark(outcome: outcome(12, "a"), localReplica: "r1")
            try await store.acknowledge(key: instance(12), id: "a")
            #expect(try await store.routeOrPark(outcome: outcome(12, "a"), localReplica: "r1") == .alreadyAcknowledged)
            #expect(try await store.park(outcome: outcome(12, "a"), ifRoutedTo: "r1") == .alreadyAcknowledged)
            _ = try await store.subscribe(key: instance(12), route: route("r1", "c"), page: wholePage)
            _ = try await store.routeOrPark(outcome: outcome(12, "b"), localReplica: "r1")
            // another client's route stays; the id acknowledged live is remembered and its copy removed
            try await store.unsubscribe(key: instance(12), route: route("r1", "other"), acknowledged: ["b"])
            #expect(try await client.send(["EXISTS", "affinity:{12}:route"]) == .integer(1))
            #expect(try await store.parked(key: instance(12), page: wholePage) == .empty)
            #expect(try await store.routeOrPark(outcome: outcome(12, "b"), localReplica: "r1") == .alreadyAcknowledged)
            try await store.unsubscribe(key: instance(12), route: nil, acknowledged: [])
            #expect(try await client.send(["EXISTS", "affinity:{12}:route"]) == .integer(1))
            try await store.unsubscribe(key: instance(12), route: route("r1", "c"), acknowledged: [])
            #expect(try await client.send(["EXISTS", "affinity:{12}:route"]) == .integer(0))
        }
    }

    /// Pages are bounded by count and bytes (the first outcome always comes), and say whether more is parked.
    @Test func parkedOutcomesAreReadInBoundedPages() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            for index in 0..<5 {
                _ = try await store.routeOrPark(
                    outcome: outcome(13, "o\(index)", #"{"i":\#(index)}"#), localReplica: "r1")
            }
            let first = try await store.subscribe(
                key: instance(13), route: route("r1"), page: ParkedPageLimit(count: 2, bytes: 1 << 20))
            #expect(first.outcomes.map(\.id) == ["o0", "o1"])
            #expect(first.hasMore)
            let bytes = try await store.parked(key: instance(13), page: ParkedPageLimit(count: 10, bytes: 1))
            #expect(bytes.outcomes.map(\.id) == ["o0"])
            #expect(bytes.hasMore)
            let all = try await store.parked(key: instance(13), page: ParkedPageLimit(count: 10, bytes: 1 << 20))
            #expect(all.outcomes.map(\.id) == ["o0", "o1", "o2", "o3", "o4"])
            #expect(!all.hasMore)
            try await store.acknowledge(key: instance(13), id: "o0")
            #expect(
                try await store.parked(key: instance(13), page: ParkedPageLimit(count: 1, bytes: 1 << 20)).outcomes.map(
                    \.id) == ["o1"])
        }
    }

    /// The bytes parked per key are bounded; acknowledging frees them.
    @Test func enforcesThePerKeyByteBound() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let variables = #"{"pad":""# + String(repeating: "x", count: 80) + #""}"#
            let frame = try outcome(14, "a", variables).frame.count
            let store = outcomeStore(client, maxParkedBytesPerKey: 2 * frame + frame / 2)
            for id in ["a", "b"] {
                _ = try await store.routeOrPark(outcome: outcome(14, id, variables), localReplica: "r1")
            }
            let error = await #expect(throws: AffinityError.self) {
                try await store.routeOrPark(outcome: try outcome(14, "c", variables), localReplica: "r1")
            }
            #expect(error?.code == .tooLarge)
            #expect(error?.message.contains("bytes") == true)
            try await store.acknowledge(key: instance(14), id: "a")
            #expect(
                try await store.routeOrPark(outcome: outcome(14, "c", variables), localReplica: "r1")
                    == .parked(duplicate: false))
        }
    }

    @Test func enforcesThePerKeyCap() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client, maxParkedPerKey: 2)
            for index in 0..<2 { _ = try await store.routeOrPark(outcome: outcome(5, "j\(index)"), localReplica: "r1") }
            let error = await #expect(throws: AffinityError.self) {
                try await store.routeOrPark(outcome: try outcome(5, "j2"), localReplica: "r1")
            }
            #expect(error?.code == .tooLarge)
            #expect(error?.message.contains("limit 2") == true)
            // A retried outcome already parked is still accepted at the cap.
            #expect(
                try await store.routeOrPark(outcome: outcome(5, "j1"), localReplica: "r1") == .parked(duplicate: true))
            try await store.acknowledge(key: instance(5), id: "j0")
            #expect(
                try await store.routeOrPark(outcome: outcome(5, "j2"), localReplica: "r1") == .parked(duplicate: false))
        }
    }

    @Test func appliesRouteAndParkTTLs() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            _ = try await store.subscribe(key: instance(1), route: route("r1"), page: wholePage)
            let routeTTL = try await client.send(["PTTL", "affinity:{1}:route"]).integer ?? -1
            #expect((59_000...60_000).contains(routeTTL))
            _ = try await store.routeOrPark(outcome: outcome(2, "j"), localReplica: "r1")
            for suffix in ["parked", "outcomes", "bytes"] {
                let ttl = try await client.send(["PTTL", "affinity:{2}:\(suffix)"]).integer ?? -1
                #expect((299_000...300_000).contains(ttl), "\(suffix) TTL \(ttl)")
            }
            let short = outcomeStore(client, routeTTL: .milliseconds(150), parkTTL: .milliseconds(150))
            _ = try await short.routeOrPark(outcome: outcome(3, "j"), localReplica: "r1")
            _ = try await short.subscribe(key: instance(4), route: route("r1"), page: wholePage)
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await store.subscribe(key: instance(3), route: route("r1"), page: wholePage) == .empty)
            #expect(
                try await store.routeOrPark(outcome: outcome(4, "j"), localReplica: "r3") == .parked(duplicate: false),
                "an expired route no longer routes")
        }
    }

    @Test func unsubscribeDeletesOnlyItsOwnRoute() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            _ = try await store.subscribe(key: instance(8), route: route("r1", "c1"), page: wholePage)
            try await store.unsubscribe(key: instance(8), route: route("r1", "other"), acknowledged: [])
            try await store.unsubscribe(key: instance(8), route: route("r2", "c1"), acknowledged: [])
            #expect(
                try await store.routeOrPark(outcome: outcome(8, "j"), localReplica: "r3") == .routed(route("r1", "c1")))
            try await store.unsubscribe(key: instance(8), route: route("r1", "c1"), acknowledged: [])
            #expect(
                try await store.routeOrPark(outcome: outcome(8, "j"), localReplica: "r3") == .parked(duplicate: false))
        }
    }

    @Test func parkAfterAFailedForwardChecksTheRoute() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client)
            _ = try await store.subscribe(key: instance(20), route: route("r1"), page: wholePage)
            #expect(try await store.park(outcome: outcome(20, "a"), ifRoutedTo: "r1") == .parked(duplicate: false))
            _ = try await store.subscribe(key: instance(20), route: route("r2", "moved"), page: wholePage)
            #expect(try await store.park(outcome: outcome(20, "b"), ifRoutedTo: "r1") == .routed(route("r2", "moved")))
            #expect(try await store.park(outcome: outcome(21, "c"), ifRoutedTo: "r1") == .parked(duplicate: false))
            let parked = try await store.subscribe(key: instance(20), route: route("r2"), page: wholePage)
            #expect(parked.outcomes.map(\.id) == ["a"])
        }
    }

    @Test func refreshRoutesNeverStealsAndRestoresAfterAnEmptyRestart() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let short = outcomeStore(client, routeTTL: .seconds(5))
            let store = outcomeStore(client)
            _ = try await short.subscribe(key: instance(30), route: route("r1", "c"), page: wholePage)
            _ = try await short.subscribe(key: instance(31), route: route("r2", "d"), page: wholePage)
            _ = try await store.routeOrPark(outcome: outcome(32, "waiting"), localReplica: "r1")
            let waiting = try await store.refreshRoutes([
                instance(30): route("r1", "c"), instance(31): route("r1", "c"), instance(32): route("r1", "c"),
            ])
            #expect(waiting == [instance(32)], "the restored route's key has an outcome parked")
            let ttl = try await client.send(["PTTL", "affinity:{30}:route"]).integer ?? -1
            #expect(ttl > 5_000, "refreshed to the store's TTL")
            #expect(try await client.send(["HGET", "affinity:{32}:route", "client"]).string == "c", "restored")
            #expect(
                try await store.routeOrPark(outcome: outcome(31, "j"), localReplica: "r3") == .routed(route("r2", "d")),
                "the other replica's route is untouched")
            let error = await #expect(throws: AffinityError.self) {
                try await store.refreshRoutes([instance(33): route("bad}id")])
            }
            #expect(error?.code == .badRequest)

            // Redis restarted empty: every route is written back in one pipeline, even with the script cache gone.
            _ = try await client.send(["FLUSHALL"])
            _ = try await client.send(["SCRIPT", "FLUSH"])
            let routes = Dictionary(
                uniqueKeysWithValues: (0..<2000).map { (instance(1000 + Int64($0)), route("r1", "c\($0)")) })
            #expect(try await store.refreshRoutes(routes) == [])
            #expect(try await client.send(["DBSIZE"]) == .integer(2000))
        }
    }

    @Test func usesHashTaggedKeysUnderTheConfiguredPrefix() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client, prefix: "tenant-a:")
            _ = try await store.subscribe(key: instance(2_251_799_813_685_249), route: route("r1"), page: wholePage)
            _ = try await store.routeOrPark(outcome: outcome(2_251_799_813_685_250, "j"), localReplica: "r1")
            let records = RedisReplicaRecords(
                client: client, keys: RedisKeySchema(prefix: "tenant-a:"), logger: testLogger("records"))
            _ = try await records.register(
                id: "r1", peerAddress: "10.0.0.1:7443", instanceNonce: "n", ttl: .seconds(10))
            let keys = try await client.send(["KEYS", "*"]).array?.compactMap(\.string).sorted()
            #expect(
                keys == [
                    "tenant-a:replica:{r1}", "tenant-a:{2251799813685249}:route",
                    "tenant-a:{2251799813685250}:bytes", "tenant-a:{2251799813685250}:outcomes",
                    "tenant-a:{2251799813685250}:parked",
                ])
        }
    }

    /// Keys are typed: what could change a hash tag cannot be a process instance key, an outcome id must not be
    /// empty, and a replica id with braces (or empty, or too long) is refused before Redis sees it.
    @Test func rejectsUnusableKeysAndIds() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            for text in ["", "a{b", "a}b", "1}", String(repeating: "9", count: 300)] {
                #expect(ProcessInstanceKey(text) == nil, "\(text)")
            }
            #expect(throws: AffinityError.self) { try outcome(1, "") }
            let store = outcomeStore(client)
            for replica in ["", "a{b", "a}b", String(repeating: "r", count: 300)] {
                let error = await #expect(throws: AffinityError.self) {
                    try await store.subscribe(key: instance(1), route: route(replica), page: wholePage)
                }
                #expect(error?.code == .badRequest)
                let parkError = await #expect(throws: AffinityError.self) {
                    try await store.routeOrPark(outcome: try outcome(1, "j"), localReplica: replica)
                }
                #expect(parkError?.code == .badRequest)
            }
            #expect(try await client.send(["DBSIZE"]) == .integer(0))
        }
    }

    @Test func eachOperationIsOneRedisCommand() async throws {
        try await withRedisStoreClient { (client: RedisClient, _: RedisServerProcess) async throws -> Void in
            let store = outcomeStore(client, maxParkedPerKey: 500)
            // Warm the script cache, then count commands.
            _ = try await store.subscribe(key: instance(1), route: route("r1"), page: wholePage)
            _ = try await store.routeOrPark(outcome: outcome(1, "w"), localReplica: "r1")
            try await store.acknowledge(key: instance(1), id: "w")
            _ = try await client.send(["CONFIG", "RESETSTAT"])
            for index in 0..<100 {
                _ = try await store.routeOrPark(outcome: outcome(50, "j\(index)"), localReplica: "r3")
                _ = try await store.subscribe(key: instance(50), route: route("r1"), page: wholePage)
                try await store.acknowledge(key: instance(50), id: "j\(index)")
            }
            let stats = try await client.send(["INFO", "commandstats"]).string ?? ""
            // commandstats also counts the commands the scripts run inside Redis; the client sent only EVALSHA.
            let lines = stats.split(separator: "\r\n").filter { $0.hasPrefix("cmdstat_") }
            #expect(lines.contains { $0.hasPrefix("cmdstat_evalsha:calls=300,") }, "\(lines)")
            #expect(!lines.contains { $0.hasPrefix("cmdstat_script") || $0.hasPrefix("cmdstat_eval:") }, "\(lines)")
        }
    }
}
