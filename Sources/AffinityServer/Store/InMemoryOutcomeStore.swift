public import AffinityProtocol
import Synchronization

/// The embedded store of a single replica: routes and parked outcomes in memory, with a park TTL
/// and bounds per key and in total, by count and by bytes.
///
/// Acknowledged ids are remembered (the latest 100,000) and never parked again. Expired outcomes are dropped
/// lazily when a key is read and by
/// ``removeExpired()``, which ``ParkedOutcomeSweeper`` calls periodically.
public final class InMemoryOutcomeStore: OutcomeStore {
    private struct ParkedOutcome {
        var outcome: Outcome
        var bytes: Int
        var expiresAt: ContinuousClock.Instant
    }

    private struct State {
        var routes: [ProcessInstanceKey: Route] = [:]
        var parked: [ProcessInstanceKey: [ParkedOutcome]] = [:]
        var parkedCount = 0
        var parkedBytes = 0

        mutating func dropExpired(of key: ProcessInstanceKey, now: ContinuousClock.Instant) -> Int {
            guard var list = parked[key] else { return 0 }
            let before = list.count
            var bytes = 0
            list.removeAll { entry in
                guard entry.expiresAt <= now else { return false }
                bytes += entry.bytes
                return true
            }
            let removed = before - list.count
            parkedCount -= removed
            parkedBytes -= bytes
            parked[key] = list.isEmpty ? nil : list
            return removed
        }

        /// Removes the parked copy of `id`; returns whether there was one.
        @discardableResult
        mutating func removeParked(key: ProcessInstanceKey, id: String) -> Bool {
            guard var list = parked[key], let index = list.firstIndex(where: { $0.outcome.id == id }) else {
                return false
            }
            parkedBytes -= list[index].bytes
            parkedCount -= 1
            list.remove(at: index)
            parked[key] = list.isEmpty ? nil : list
            return true
        }

        func page(of key: ProcessInstanceKey, limit: ParkedPageLimit) -> ParkedPage {
            guard let list = parked[key] else { return .empty }
            var outcomes: [Outcome] = []
            var bytes = 0
            for entry in list {
                if !outcomes.isEmpty && (outcomes.count == limit.count || bytes + entry.bytes > limit.bytes) {
                    return ParkedPage(outcomes: outcomes, hasMore: true)
                }
                outcomes.append(entry.outcome)
                bytes += entry.bytes
            }
            return ParkedPage(outcomes: outcomes, hasMore: false)
        }
    }

    private let state = Mutex(State())
    /// The latest acknowledged outcomes (by key and id), bounded by count so that the store's memory does not
    /// grow with the traffic: in a single replica they guard against a repeat of an outcome (a worker's retry,
    /// a Zeebe job handed out twice), which comes within the job timeout, long before this many newer acks.
    private let acknowledgedOutcomes: AcknowledgedOutcomes
    private let parkTTL: Duration
    private let maxParkedPerKey: Int
    private let maxParkedTotal: Int
    private let maxParkedBytesPerKey: Int
    private let maxParkedBytes: Int
    private let onExpired: @Sendable (Int) -> Void

    /// Creates an empty store.
    /// - Parameters:
    ///   - parkTTL: how long a parked outcome (and an acknowledgement) is kept.
    ///   - maxParkedPerKey: parked outcomes per key before parking fails with `too_large`.
    ///   - maxParkedTotal: parked outcomes in total before parking fails with `too_large`.
    ///   - maxParkedBytesPerKey: bytes of parked outcome frames per key before parking fails with `too_large`.
    ///   - maxParkedBytes: bytes of parked outcome frames in total before parking fails with `too_large`.
    ///   - rememberedAcknowledgements: how many acknowledged ids are remembered (never parked again): those it
    ///     is told about by ``acknowledge(key:id:)`` and ``unsubscribe(key:route:acknowledged:)``.
    ///   - onExpired: called with the number of outcomes that expired (for metrics).
    public init(
        parkTTL: Duration,
        maxParkedPerKey: Int = 1000,
        maxParkedTotal: Int = 100_000,
        maxParkedBytesPerKey: Int = Int.max,
        maxParkedBytes: Int = Int.max,
        rememberedAcknowledgements: Int = 100_000,
        onExpired: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.acknowledgedOutcomes = AcknowledgedOutcomes(capacity: rememberedAcknowledgements)
        self.parkTTL = parkTTL
        self.maxParkedPerKey = maxParkedPerKey
        self.maxParkedTotal = maxParkedTotal
        self.maxParkedBytesPerKey = maxParkedBytesPerKey
        self.maxParkedBytes = maxParkedBytes
        self.onExpired = onExpired
    }

    public func subscribe(
        key: ProcessInstanceKey, route: Route, page limit: ParkedPageLimit
    ) async throws(AffinityError) -> ParkedPage {
        let now = ContinuousClock.now
        let (page, expired) = state.withLock { state in
            let expired = state.dropExpired(of: key, now: now)
            state.routes[key] = route
            return (state.page(of: key, limit: limit), expired)
        }
        if expired > 0 { onExpired(expired) }
        return page
    }

    public func parked(key: ProcessInstanceKey, page limit: ParkedPageLimit) async throws(AffinityError) -> ParkedPage {
        let now = ContinuousClock.now
        let (page, expired) = state.withLock { state in
            let expired = state.dropExpired(of: key, now: now)
            return (state.page(of: key, limit: limit), expired)
        }
        if expired > 0 { onExpired(expired) }
        return page
    }

    public func acknowledge(key: ProcessInstanceKey, id: String) async throws(AffinityError) {
        acknowledgedOutcomes.insert(ParkedOutcomeReference(key: key, id: id))
        _ = state.withLock { state in
            state.removeParked(key: key, id: id)
        }
    }

    public func unsubscribe(
        key: ProcessInstanceKey, route: Route?, acknowledged: [String]
    ) async throws(AffinityError) {
        for id in acknowledged { acknowledgedOutcomes.insert(ParkedOutcomeReference(key: key, id: id)) }
        state.withLock { state in
            if let route, state.routes[key] == route { state.routes[key] = nil }
            for id in acknowledged where state.parked[key] != nil {
                state.removeParked(key: key, id: id)
            }
        }
    }

    public func routeOrPark(outcome: Outcome, localReplica: String) async throws(AffinityError) -> ParkResult {
        try parkUnlessRoutedElsewhere(outcome, replicaID: localReplica)
    }

    public func park(outcome: Outcome, ifRoutedTo replicaID: String) async throws(AffinityError) -> ParkResult {
        try parkUnlessRoutedElsewhere(outcome, replicaID: replicaID)
    }

    /// Both parking operations: the route if it points at a replica other than `replicaID`, else a park.
    private func parkUnlessRoutedElsewhere(_ outcome: Outcome, replicaID: String) throws(AffinityError) -> ParkResult {
        let result: Result<ParkResult, AffinityError> = state.withLock { state in
            if isAcknowledged(outcome, in: &state) { return .success(.alreadyAcknowledged) }
            if let route = state.routes[outcome.key], route.replicaID != replicaID {
                return .success(.routed(route))
            }
            return append(outcome, to: &state).map { .parked(duplicate: $0) }
        }
        return try result.get()
    }

    public func refreshRoutes(
        _ routes: [ProcessInstanceKey: Route]
    ) async throws(AffinityError) -> Set<ProcessInstanceKey> {
        let now = ContinuousClock.now
        return state.withLock { state in
            var waiting = Set<ProcessInstanceKey>()
            for (key, route) in routes {
                if let owner = state.routes[key], owner.replicaID != route.replicaID { continue }
                state.routes[key] = route
                _ = state.dropExpired(of: key, now: now)
                if state.parked[key] != nil { waiting.insert(key) }
            }
            return waiting
        }
    }

    /// Drops every parked outcome and acknowledgement whose TTL has passed; returns how many outcomes.
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

    /// The bytes of the outcome frames parked now (including expired ones not yet swept).
    public var parkedBytes: Int {
        state.withLock { $0.parkedBytes }
    }

    /// The route of `key`, if any.
    public func route(of key: ProcessInstanceKey) -> Route? {
        state.withLock { $0.routes[key] }
    }

    private func isAcknowledged(_ outcome: Outcome, in state: inout State) -> Bool {
        acknowledgedOutcomes.contains(ParkedOutcomeReference(outcome))
    }

    /// Parks `outcome`; `true` when it was parked already with the same variables.
    private func append(_ outcome: Outcome, to state: inout State) -> Result<Bool, AffinityError> {
        let now = ContinuousClock.now
        let expired = state.dropExpired(of: outcome.key, now: now)
        if expired > 0 { onExpired(expired) }
        let list = state.parked[outcome.key] ?? []
        if let earlier = list.first(where: { $0.outcome.id == outcome.id }) {
            guard earlier.outcome.variables == outcome.variables else {
                return .failure(
                    AffinityError(
                        code: .conflict,
                        message: "outcome \(outcome.id) is parked already with other variables; the first is kept",
                        ref: outcome.id))
            }
            return .success(true)
        }
        let bytes = outcome.frameByteCount
        guard list.count < maxParkedPerKey else {
            return .failure(
                AffinityError(
                    code: .tooLarge, message: "key \(outcome.key) already has \(maxParkedPerKey) parked outcomes",
                    ref: outcome.id))
        }
        let keyBytes = list.reduce(0) { $0 + $1.bytes }
        guard keyBytes + bytes <= maxParkedBytesPerKey else {
            return .failure(
                AffinityError(
                    code: .tooLarge,
                    message: "key \(outcome.key) would hold more than \(maxParkedBytesPerKey) bytes of parked outcomes",
                    ref: outcome.id))
        }
        guard state.parkedCount < maxParkedTotal else {
            return .failure(
                AffinityError(
                    code: .tooLarge, message: "the store holds its maximum of \(maxParkedTotal) parked outcomes",
                    ref: outcome.id))
        }
        guard state.parkedBytes + bytes <= maxParkedBytes else {
            return .failure(
                AffinityError(
                    code: .tooLarge,
                    message: "the store holds its maximum of \(maxParkedBytes) bytes of parked outcomes",
                    ref: outcome.id))
        }
        state.parked[outcome.key, default: []].append(
            ParkedOutcome(outcome: outcome, bytes: bytes, expiresAt: now + parkTTL))
        state.parkedCount += 1
        state.parkedBytes += bytes
        return .success(false)
    }
}
