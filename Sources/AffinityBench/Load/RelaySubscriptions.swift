import AffinityProtocol
import Synchronization

/// The pre-subscribed keys of the `relay` phase: one subscription per slot, each with the client connection
/// that holds it and the worker connection that sends its outcomes. A life cycle borrows a free subscription,
/// sends one outcome on it and gives it back, so that no two outcomes of one key are in flight at once (the
/// client's inbox expects one outcome per key) and every key carries many outcomes.
final class RelaySubscriptions: Sendable {
    /// One subscribed key and its connections.
    struct Subscription: Sendable {
        let key: ProcessInstanceKey
        let client: BenchConnection
        let worker: BenchConnection
        let forwarded: Bool
    }

    private let all: [Subscription]
    private let free: Mutex<[Subscription]>
    private let numbers = Atomic<Int>(0)

    private init(_ subscriptions: [Subscription]) {
        all = subscriptions
        free = Mutex(subscriptions)
    }

    /// Subscribes `count` fresh keys, paired with connections like the slots of the other phases.
    static func subscribe(count: Int, topology: LoadTopology, keys: KeySource) async throws -> RelaySubscriptions {
        var subscriptions: [Subscription] = []
        for slot in 0..<count {
            let (client, worker, forwarded) = topology.pair(slot: slot, sequence: 0)
            let key = keys.take()
            try await client.subscribe(key)
            subscriptions.append(Subscription(key: key, client: client, worker: worker, forwarded: forwarded))
        }
        return RelaySubscriptions(subscriptions)
    }

    /// A free subscription, or nil when every one has an outcome in flight.
    func acquire() -> Subscription? {
        free.withLock { $0.popLast() }
    }

    /// Gives `subscription` back.
    func release(_ subscription: Subscription) {
        free.withLock { $0.append(subscription) }
    }

    /// A unique number for the next outcome id.
    func nextNumber() -> Int {
        numbers.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Unsubscribes every key (after the load drained).
    func unsubscribeAll() async throws {
        for subscription in all { try await subscription.client.unsubscribe(subscription.key) }
    }
}
