import AffinityProtocol
import CoreMetrics
import Synchronization

/// The local subscriptions of this replica (key -> subscribers) and every open WebSocket connection.
final class ConnectionRegistry: Sendable {
    private struct State {
        var subscribers: [ProcessInstanceKey: [ConnectionID: any OutcomeSubscriber]] = [:]
        var routes: [ProcessInstanceKey: [ConnectionID: Route]] = [:]
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
        state.withLock { $0.subscribers[key]?.isEmpty == false }
    }

    func subscribers(of key: ProcessInstanceKey) -> [any OutcomeSubscriber] {
        state.withLock { state in state.subscribers[key].map { Array($0.values) } ?? [] }
    }

    func add(_ subscriber: any OutcomeSubscriber, for key: ProcessInstanceKey, route: Route) {
        let added = state.withLock { state in
            state.routes[key, default: [:]][subscriber.connectionID] = route
            let isNew =
                state.subscribers[key, default: [:]].updateValue(subscriber, forKey: subscriber.connectionID) == nil
            if isNew { state.subscriptionCount += 1 }
            return isNew
        }
        if added { metrics.subscriptions.increment() }
    }

    func remove(_ connectionID: ConnectionID, for keys: some Sequence<ProcessInstanceKey>) {
        var removed = 0
        state.withLock { state in
            for key in keys {
                guard state.subscribers[key]?.removeValue(forKey: connectionID) != nil else { continue }
                state.routes[key]?.removeValue(forKey: connectionID)
                if state.subscribers[key]?.isEmpty == true {
                    state.subscribers[key] = nil
                    state.routes[key] = nil
                }
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
            state.routes.compactMapValues { $0.values.first }
        }
    }

    /// The number of local subscriptions.
    var subscriptionCount: Int {
        state.withLock { $0.subscriptionCount }
    }
}
