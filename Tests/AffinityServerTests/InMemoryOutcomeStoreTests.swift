import AffinityProtocol
import AffinityServer
import Synchronization
import Testing

@Suite("InMemoryOutcomeStore")
struct InMemoryOutcomeStoreTests {
    let key = ProcessInstanceKey(77)!
    let local = Route(replicaID: "r1", clientID: "c1")

    func outcome(_ id: String, key: ProcessInstanceKey? = nil) throws -> Outcome {
        try Outcome(id: id, key: key ?? self.key, variables: Array(#"{"n":"\#(id)"}"#.utf8))
    }

    @Test func parkThenSubscribeReturnsInOrderWithoutRemoving() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        for id in ["a", "b", "c"] {
            #expect(try await store.routeOrPark(outcome: outcome(id), localReplica: "r1") == .parked)
        }
        #expect(try await store.subscribe(key: key, route: local).map(\.id) == ["a", "b", "c"])
        #expect(try await store.subscribe(key: key, route: local).map(\.id) == ["a", "b", "c"])
        try await store.acknowledge(key: key, id: "b")
        #expect(try await store.subscribe(key: key, route: local).map(\.id) == ["a", "c"])
        try await store.acknowledge(key: key, id: "unknown")
        #expect(store.parkedCount == 2)
    }

    @Test func routeToAnotherReplicaIsReturned() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        _ = try await store.subscribe(key: key, route: Route(replicaID: "r2", clientID: "x"))
        #expect(
            try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1")
                == .routed(Route(replicaID: "r2", clientID: "x")))
        #expect(try await store.routeOrPark(outcome: outcome("a"), localReplica: "r2") == .parked)
        #expect(try await store.park(outcome: outcome("b"), ifRoutedTo: "r2") == .parked)
        #expect(
            try await store.park(outcome: outcome("c"), ifRoutedTo: "r9")
                == .rerouted(Route(replicaID: "r2", clientID: "x")))
    }

    @Test func unsubscribeOnlyRemovesItsOwnRoute() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        let other = Route(replicaID: "r2", clientID: "x")
        _ = try await store.subscribe(key: key, route: other)
        try await store.unsubscribe(key: key, route: local)
        #expect(store.route(of: key) == other)
        try await store.unsubscribe(key: key, route: other)
        #expect(store.route(of: key) == nil)
        try await store.refreshRoutes([key: local])
        #expect(store.route(of: key) == local)
    }

    @Test func parkedOutcomesExpire() async throws {
        let expired = ExpiryCounter()
        let store = InMemoryOutcomeStore(parkTTL: .milliseconds(100), onExpired: { expired.add($0) })
        _ = try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1")
        _ = try await store.routeOrPark(outcome: outcome("b", key: ProcessInstanceKey(78)!), localReplica: "r1")
        try await Task.sleep(for: .milliseconds(200))
        #expect(store.removeExpired() == 2)
        #expect(expired.total == 2)
        #expect(try await store.subscribe(key: key, route: local).isEmpty)
    }

    @Test func boundsPerKeyAndInTotal() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60), maxParkedPerKey: 2, maxParkedTotal: 3)
        _ = try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1")
        _ = try await store.routeOrPark(outcome: outcome("b"), localReplica: "r1")
        await #expect(throws: AffinityError.self) {
            _ = try await store.routeOrPark(outcome: outcome("c"), localReplica: "r1")
        }
        let other = ProcessInstanceKey(5)!
        _ = try await store.routeOrPark(outcome: outcome("d", key: other), localReplica: "r1")
        do {
            _ = try await store.routeOrPark(outcome: outcome("e", key: other), localReplica: "r1")
            Issue.record("expected too_large")
        } catch let error as AffinityError {
            #expect(error.code == .tooLarge)
        }
    }
}

final class ExpiryCounter: Sendable {
    private let value = Mutex(0)
    func add(_ count: Int) { value.withLock { $0 += count } }
    var total: Int { value.withLock { $0 } }
}
