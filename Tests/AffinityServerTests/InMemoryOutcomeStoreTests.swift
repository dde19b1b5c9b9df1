import AffinityProtocol
import AffinityServer
import Synchronization
import Testing

@Suite("InMemoryOutcomeStore")
struct InMemoryOutcomeStoreTests {
    let key = ProcessInstanceKey(77)!
    let local = Route(replicaID: "r1", clientID: "c1")

    let page = ParkedPageLimit(count: 100, bytes: 1 << 20)

    func outcome(_ id: String, key: ProcessInstanceKey? = nil) throws -> Outcome {
        try Outcome(id: id, key: key ?? self.key, variables: Array(#"{"n":"\#(id)"}"#.utf8))
    }

    func ids(_ store: InMemoryOutcomeStore, route: Route? = nil) async throws -> [String] {
        try await store.subscribe(key: key, route: route ?? local, page: page).outcomes.map(\.id)
    }

    @Test func parkThenSubscribeReturnsInOrderWithoutRemoving() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        for id in ["a", "b", "c"] {
            #expect(try await store.routeOrPark(outcome: outcome(id), localReplica: "r1") == .parked(duplicate: false))
        }
        #expect(try await ids(store) == ["a", "b", "c"])
        #expect(try await ids(store) == ["a", "b", "c"])
        try await store.acknowledge(key: key, id: "b")
        #expect(try await ids(store) == ["a", "c"])
        try await store.acknowledge(key: key, id: "unknown")
        #expect(store.parkedCount == 2)
    }

    @Test func routeToAnotherReplicaIsReturned() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        _ = try await ids(store, route: Route(replicaID: "r2", clientID: "x"))
        #expect(
            try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1")
                == .routed(Route(replicaID: "r2", clientID: "x")))
        #expect(try await store.routeOrPark(outcome: outcome("a"), localReplica: "r2") == .parked(duplicate: false))
        #expect(try await store.park(outcome: outcome("b"), ifRoutedTo: "r2") == .parked(duplicate: false))
        #expect(
            try await store.park(outcome: outcome("c"), ifRoutedTo: "r9")
                == .routed(Route(replicaID: "r2", clientID: "x")))
    }

    @Test func unsubscribeOnlyRemovesItsOwnRoute() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        let other = Route(replicaID: "r2", clientID: "x")
        _ = try await ids(store, route: other)
        try await store.unsubscribe(key: key, route: local, acknowledged: [])
        #expect(store.route(of: key) == other)
        try await store.unsubscribe(key: key, route: nil, acknowledged: [])
        #expect(store.route(of: key) == other)
        try await store.unsubscribe(key: key, route: other, acknowledged: [])
        #expect(store.route(of: key) == nil)
        #expect(try await store.refreshRoutes([key: local]).isEmpty)
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
        #expect(try await ids(store).isEmpty)
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

extension InMemoryOutcomeStoreTests {
    @Test func pagesAreBoundedByCountAndBytesButHoldAtLeastOneOutcome() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        for id in ["a", "b", "c", "d", "e"] {
            _ = try await store.routeOrPark(outcome: outcome(id), localReplica: "r1")
        }
        let frame = try outcome("a").frameByteCount
        #expect(try outcome("a").frame.count == frame)
        var first = try await store.subscribe(key: key, route: local, page: ParkedPageLimit(count: 2, bytes: 1 << 20))
        #expect(first.outcomes.map(\.id) == ["a", "b"])
        #expect(first.hasMore)
        first = try await store.parked(key: key, page: ParkedPageLimit(count: 10, bytes: 2 * frame))
        #expect(first.outcomes.map(\.id) == ["a", "b"])
        #expect(first.hasMore)
        first = try await store.parked(key: key, page: ParkedPageLimit(count: 10, bytes: 1))
        #expect(first.outcomes.map(\.id) == ["a"])
        #expect(first.hasMore)
        let all = try await store.parked(key: key, page: ParkedPageLimit(count: 10, bytes: 1 << 20))
        #expect(all.outcomes.map(\.id) == ["a", "b", "c", "d", "e"])
        #expect(!all.hasMore)
    }

    @Test func sameIDSamePayloadIsIdempotentAndAnotherPayloadConflicts() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        #expect(try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1") == .parked(duplicate: false))
        #expect(try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1") == .parked(duplicate: true))
        #expect(try await store.park(outcome: outcome("a"), ifRoutedTo: "r1") == .parked(duplicate: true))
        #expect(store.parkedCount == 1)
        let other = try Outcome(id: "a", key: key, variables: Array(#"{"other":1}"#.utf8))
        await #expect(throws: AffinityError.self) {
            _ = try await store.routeOrPark(outcome: other, localReplica: "r1")
        }
        do {
            _ = try await store.park(outcome: other, ifRoutedTo: "r1")
            Issue.record("expected conflict")
        } catch {
            #expect(error.code == .conflict)
        }
        #expect(try await ids(store) == ["a"])
        #expect(try await store.parked(key: key, page: page).outcomes == [try outcome("a")])
    }

    @Test func anAcknowledgedIDIsNeverParkedAgain() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        _ = try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1")
        try await store.acknowledge(key: key, id: "a")
        #expect(try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1") == .alreadyAcknowledged)
        #expect(try await store.park(outcome: outcome("a"), ifRoutedTo: "r1") == .alreadyAcknowledged)
        // ids acknowledged live are passed with the unsubscribe: a late parked copy goes
        _ = try await store.routeOrPark(outcome: outcome("b"), localReplica: "r1")
        try await store.unsubscribe(key: key, route: nil, acknowledged: ["b"])
        #expect(try await ids(store).isEmpty)
        #expect(try await store.park(outcome: outcome("b"), ifRoutedTo: "r1") == .alreadyAcknowledged)
    }

    /// The remembered acknowledgements are bounded by count (the memory does not grow with the traffic): the
    /// oldest is forgotten first.
    @Test func rememberedAcknowledgementsAreBounded() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60), rememberedAcknowledgements: 2)
        for id in ["a", "b", "c"] { try await store.acknowledge(key: key, id: id) }
        #expect(try await store.routeOrPark(outcome: outcome("c"), localReplica: "r1") == .alreadyAcknowledged)
        #expect(try await store.routeOrPark(outcome: outcome("b"), localReplica: "r1") == .alreadyAcknowledged)
        #expect(try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1") == .parked(duplicate: false))
    }

    @Test func refreshReportsKeysWithParkedOutcomes() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        let empty = ProcessInstanceKey(90)!
        _ = try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1")
        #expect(try await store.refreshRoutes([key: local, empty: local]) == [key])
        // never over a route another replica holds
        _ = try await store.subscribe(
            key: empty, route: Route(replicaID: "r2", clientID: "y"), page: page)
        _ = try await store.routeOrPark(outcome: outcome("b", key: empty), localReplica: "r2")
        #expect(try await store.refreshRoutes([empty: local]).isEmpty)
        #expect(store.route(of: empty)?.replicaID == "r2")
    }

    @Test func bytesAreBoundedPerKeyAndInTotal() async throws {
        let frame = try outcome("a").frameByteCount
        let store = InMemoryOutcomeStore(
            parkTTL: .seconds(60), maxParkedBytesPerKey: 2 * frame, maxParkedBytes: 3 * frame)
        _ = try await store.routeOrPark(outcome: outcome("a"), localReplica: "r1")
        _ = try await store.routeOrPark(outcome: outcome("b"), localReplica: "r1")
        do {
            _ = try await store.routeOrPark(outcome: outcome("c"), localReplica: "r1")
            Issue.record("expected too_large")
        } catch let error as AffinityError {
            #expect(error.code == .tooLarge)
        }
        let other = ProcessInstanceKey(76)!  // as many digits as `key`: frames of the same size
        _ = try await store.routeOrPark(outcome: outcome("d", key: other), localReplica: "r1")
        do {
            _ = try await store.routeOrPark(outcome: outcome("e", key: other), localReplica: "r1")
            Issue.record("expected too_large")
        } catch let error as AffinityError {
            #expect(error.code == .tooLarge)
        }
        #expect(store.parkedBytes == 3 * frame)
        // what is parked stays readable; acknowledging frees the bytes
        #expect(try await ids(store) == ["a", "b"])
        try await store.acknowledge(key: key, id: "a")
        #expect(store.parkedBytes == 2 * frame)
        #expect(
            try await store.routeOrPark(outcome: outcome("e", key: other), localReplica: "r1")
                == .parked(duplicate: false))
    }
}

final class ExpiryCounter: Sendable {
    private let value = Mutex(0)
    func add(_ count: Int) { value.withLock { $0 += count } }
    var total: Int { value.withLock { $0 } }
}
