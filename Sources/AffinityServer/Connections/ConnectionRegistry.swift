import AffinityProtocol
import CoreMetrics
import Synchronization

/// The local subscriptions of this replica (key -> subscribers) and every open WebSocket connection.
final class ConnectionRegistry: Sendable {
    /// One local subscriber of a key, with its route.
    private struct Subscription {
        let subscriber: any OutcomeSubscriber
        let route: Route
    }

    /// The local subscribers of one key: nearly always one, held inline (no dictionary per key).
    private enum KeySubscriptions {
        case one(Subscription)
        case many([ConnectionID: Subscription])

        var subscribers: [any OutcomeSubscriber] {
            switch self {
            case .one(let subscription): [subscription.subscriber]
            case .many(let subscriptions): subscriptions.values.map(\.subscriber)
            }
        }

        var anyRoute: Route? {
            switch self {
            case .one(let subscription): subscription.route
            case .many(let subscriptions): subscriptions.values.first?.route
            }
        }

        /// Adds or replaces the subscription of its connection; returns true when it is new.
        mutating func add(_ subscription: Subscription) -> Bool {
            let id = subscription.subscriber.connectionID
            switch self {
            case .one(let existing) where existing.subscriber.connectionID == id:
                self = .one(subscription)
                return false
            case .one(let existing):
                self = .many([existing.subscriber.connectionID: existing, id: subscription])
                return true
            case .many(var subscriptions):
                self = .one(subscription)  // releases the dictionary, so that it is not copied
                let isNew = subscriptions.updateValue(subscription, forKey: id) == nil
                self = .many(subscriptions)
                return isNew
            }
        }

        /// Removes the subscription of `connectionID`; returns what is left (nil: none) and whether
        /// there was one.
        func removing(_ connectionID: ConnectionID) -> (left: KeySubscriptions?, removed: Bool) {
            switch self {
            case .one(let existing):
                guard existing.subscriber.connectionID == connectionID else { return (self, false) }
                return (nil, true)
            case .many(var subscriptions):
                guard subscriptions.removeValue(forKey: connectionID) != nil else { return (self, false) }
                if subscriptions.count == 1, let last = subscriptions.values.first { return (.one(last), true) }
                return (subscriptions.isEmpty ? nil : .many(subscriptions), true)
            }
        }
    }

    private struct State {
        var subscriptions: [ProcessInstanceKey: KeySubscriptions] = [:]
        var connections: [ConnectionID: WebSocketConnection] = [:]
        var longPolls: [ConnectionID: LongPollWaiter] = [:]
        var subscriptionCount = 0
    }

    private let state = Mutex(State())
    private let metrics: AffinityMetrics
    /// Poked when a connection ends (the drain waits for connections to go).
    let drainSignal: DrainSignal

    init(metrics: AffinityMetrics, drainSignal: DrainSignal = DrainSignal()) {
        self.metrics = metrics
        self.drainSignal = drainSignal
    }

    /// Whether `key` has a local subscriber (without building the list).
    func hasSubscribers(of key: ProcessInstanceKey) -> Bool {
        state.withLock { $0.subscriptions[key] != nil }
    }

    func subscribers(of key: ProcessInstanceKey) -> [any OutcomeSubscriber] {
        state.withLock { state in state.subscriptions[key]?.subscribers ?? [] }
    }

    func add(_ subscriber: any OutcomeSubscriber, for key: ProcessInstanceKey, route: Route) {
        let added = state.withLock { state in
            let subscription = Subscription(subscriber: subscriber, route: route)
            let isNew = state.subscriptions[key]?.add(subscription) ?? true
            if state.subscriptions[key] == nil { state.subscriptions[key] = .one(subscription) }
            if isNew { state.subscriptionCount += 1 }
            return isNew
        }
        if added { metrics.subscriptions.increment() }
    }

    func remove(_ connectionID: ConnectionID, for keys: some Sequence<ProcessInstanceKey>) {
        var removed = 0
        state.withLock { state in
            for key in keys {
                guard let (left, wasThere) = state.subscriptions[key].map({ $0.removing(connectionID) }), wasThere
                else { continue }
                state.subscriptions[key] = left
                removed += 1
            }
            state.subscriptionCount -= removed
        }
        if removed > 0 { metrics.subscriptions.decrement(by: Double(removed)) }
    }

    func register(_ connection: WebSocketConnection) {
        state.withLock { _ = $0.connections.updateValue(connection, forKey: connection.connectionID) }
    }

    func unregister(_ connection: WebSocketConnection) {
        state.withLock { _ = $0.connections.removeValue(forKey: connection.connectionID) }
        drainSignal.poke()
    }

    func register(_ waiter: LongPollWaiter) {
        state.withLock { _ = $0.longPolls.updateValue(waiter, forKey: waiter.connectionID) }
    }

    func unregister(_ waiter: LongPollWaiter) {
        state.withLock { _ = $0.longPolls.removeValue(forKey: waiter.connectionID) }
    }

    /// Every waiting long poll.
    var longPolls: [LongPollWaiter] {
        state.withLock { Array($0.longPolls.values) }
    }

    /// Every open WebSocket connection.
    var connections: [WebSocketConnection] {
        state.withLock { Array($0.connections.values) }
    }

    /// One route per locally subscribed key (for ``OutcomeStore/refreshRoutes(_:)``).
    func localRoutes() -> [ProcessInstanceKey: Route] {
        state.withLock { state in
            state.subscriptions.compactMapValues(\.anyRoute)
        }
    }

    /// The number of local subscriptions.
    var subscriptionCount: Int {
        state.withLock { $0.subscriptionCount }
    }
}
