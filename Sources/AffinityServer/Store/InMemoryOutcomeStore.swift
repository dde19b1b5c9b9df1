public import AffinityProtocol
import Synchronization

/// The embedded store of a single replica: routes and parked outcomes in memory, with a park TTL
/// and bounds per key and in total.
///
/// Expired outcomes are dropped lazily when a key is read and by ``removeExpired()``, which
/// ``ParkedOutcomeSweeper`` calls periodically.
public final class InMemoryOutcomeStore: OutcomeStore {
    private struct ParkedOutcome {
        var outcome: Outcome
        var expiresAt: ContinuousClock.Instant
    }

    private struct State {
        var routes: [ProcessInstanceKey: Route] = [:]
        var parked: [ProcessInstanceKey: [ParkedOutcome]] = [:]
        var parkedCount = 0

        mutating func dropExpired(of key: ProcessInstanceKey, now: ContinuousClock.Instant) -> Int {
            guard var list = parked[key] else { return 0 }
            let before = list.count
            list.removeAll { $0.expiresAt <= now }
            let removed = before - list.count
            parkedCount -= removed
            parked[key] = list.isEmpty ? nil : list
            return removed
        }
    }

    private let state = Mutex(State())
    private let parkTTL: Duration
    private let maxParkedPerKey: Int
    private let maxParkedTotal: Int
    private let onExpired: @Sendable (Int) -> Void

    /// Creates an empty store.
    /// - Parameters:
    ///   - parkTTL: how long a parked outcome is kept.
    ///   - maxParkedPerKey: parked outcomes per key before parking fails with `too_large`.
    ///   - maxParkedTotal: parked outcomes in total before parking fails with `too_large`.
    ///   - onExpired: called with the number of outcomes that expired (for metrics).
    public init(
        parkTTL: Duration,
        maxParkedPerKey: Int = 1000,
        maxParkedTotal: Int = 100_000,
        onExpired: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.parkTTL = parkTTL
        self.maxParkedPerKey = maxParkedPerKey
        self.maxParkedTotal = maxParkedTotal
        self.onExpired = onExpired
    }

    public func subscribe(key: ProcessInstanceKey, route: Route) async throws(AffinityError) -> [Outcome] {
        let now = ContinuousClock.now
        let (outcomes, expired) = state.withLock { state in
            let expired = state.dropExpired(of: key, now: now)
            state.routes[key] = route
            return ((state.parked[key] ?? []).map(\.outcome), expired)
        }
        if expired > 0 { onExpired(expired) }
        return outcomes
    }

    public func acknowledge(key: ProcessInstanceKey, id: String) async throws(AffinityError) {
        state.withLock { state in
            guard var list = state.parked[key], let index = list.firstIndex(where: { $0.outcome.id == id }) else {
                return
            }
            list.remove(at: index)
            state.parkedCount -= 1
            state.parked[key] = list.isEmpty ? nil : list
        }
    }

    public func unsubscribe(key: ProcessInstanceKey, route: Route) async throws(AffinityError) {
        state.withLock { state in
            if state.routes[key] == route { state.routes[key] = nil }
        }
    }

    public func routeOrPark(outcome: Outcome, localReplica: String) async throws(AffinityError) -> RouteOrParkResult {
        let result: Result<RouteOrParkResult, AffinityError> = state.withLock { state in
            if let route = state.routes[outcome.key], route.replicaID != localReplica {
                return .success(.routed(route))
            }
            return append(outcome, to: &state).map { .parked }
        }
        return try result.get()
    }

    public func park(
        outcome: Outcome, ifRoutedTo replicaID: String
    ) async throws(AffinityError) -> ConditionalParkResult {
        let result: Result<ConditionalParkResult, AffinityError> = state.withLock { state in
            if let route = state.routes[outcome.key], route.replicaID != replicaID {
                return .success(.rerouted(route))
            }
            return append(outcome, to: &state).map { .parked }
        }
        return try result.get()
    }

    public func refreshRoutes(_ routes: [ProcessInstanceKey: Route]) async throws(AffinityError) {
        state.withLock { state in
            state.routes.merge(routes) { _, new in new }
        }
    }

    /// Drops every parked outcome whose TTL has passed; returns how many.
    @discardableResult
    public func removeExpired() -> Int {
        let now = ContinuousClock.now
        let expired = state.withLock { state in
            var removed = 0
            for key in Array(state.parked.keys) {
                removed += state.dropExpired(of: key, now: now)
            }
            return removed
        }
        if expired > 0 { onExpired(expired) }
        return expired
    }

    /// The number of outcomes parked now (including expired ones not yet swept).
    public var parkedCount: Int {
        state.withLock { $0.parkedCount }
    }

    /// The route of `key`, if any.
    public func route(of key: ProcessInstanceKey) -> Route? {
        state.withLock { $0.routes[key] }
    }

    private func append(_ outcome: Outcome, to state: inout State) -> Result<Void, AffinityError> {
        let now = ContinuousClock.now
        let expired = state.dropExpired(of: outcome.key, now: now)
        if expired > 0 { onExpired(expired) }
        let list = state.parked[outcome.key] ?? []
        guard list.count < maxParkedPerKey else {
            return .failure(
                AffinityError(
                    code: .tooLarge,
                    message: "key \(outcome.key) already has \(maxParkedPerKey) parked outcomes",
                    ref: outcome.id
                )
            )
        }
        guard state.parkedCount < maxParkedTotal else {
            return .failure(
                AffinityError(
                    code: .tooLarge, message: "the store holds its maximum of \(maxParkedTotal) parked outcomes",
                    ref: outcome.id)
            )
        }
        state.parked[outcome.key, default: []].append(ParkedOutcome(outcome: outcome, expiresAt: now + parkTTL))
        state.parkedCount += 1
        return .success(())
    }
}
