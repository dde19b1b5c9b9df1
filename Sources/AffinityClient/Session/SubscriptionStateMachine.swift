import AffinityProtocol

/// Identifies one waiting request (an `awaitOutcome` call or one `outcomes(...)` iteration).
struct SubscriberID: Hashable, Sendable, Comparable, CustomStringConvertible {
    let value: UInt64
    static func < (lhs: SubscriberID, rhs: SubscriberID) -> Bool { lhs.value < rhs.value }
    var description: String { String(value) }
}

/// The subscriptions of a session, without I/O: which keys are subscribed on the current
/// connection, which frames to send when a request starts or ends or the connection comes back,
/// which outcomes go to which request, and when to acknowledge.
///
/// De-duplication by outcome id is bounded: the ids seen for a key are kept while the key has a
/// subscriber; when the last subscriber leaves, the ids that were handed over move to a bounded
/// set of recent ids (oldest forgotten first).
struct SubscriptionStateMachine: Sendable {
    /// What happened to one outcome id of a key.
    enum IDState: Sendable, Hashable {
        /// Given to subscribers' mailboxes, not yet taken by a consumer: not acknowledged yet.
        case buffered
        /// A consumer took it; it was acknowledged.
        case handedOver
    }

    struct KeyState: Sendable {
        var subscribers: Set<SubscriberID> = []
        var ids: [String: IDState] = [:]
        /// `subscribe` was sent on the current connection.
        var subscribedOnConnection = false
        /// The replica answered `subscribed` on the current connection.
        var confirmed = false
    }

    /// What to do with an outcome that arrived.
    enum ReceiveDecision: Sendable, Hashable {
        /// Put it in these subscribers' mailboxes; acknowledge when one of them takes it.
        case deliver([SubscriberID])
        /// Already handed over: acknowledge again so the replica stops re-sending it; do not deliver.
        case acknowledgeDuplicate
        /// Already waiting in a mailbox: drop it; the ack follows when the first copy is taken.
        case dropDuplicate
        /// No subscriber here (the request ended): do not acknowledge, so the replica parks it.
        case noSubscriber
    }

    private(set) var keys: [ProcessInstanceKey: KeyState] = [:]
    private var subscriberKeys: [SubscriberID: ProcessInstanceKey] = [:]
    private(set) var recentIDs: RecentIDSet
    private(set) var isConnected = false

    init(recentIDCapacity: Int) {
        recentIDs = RecentIDSet(capacity: recentIDCapacity)
    }

    /// Requests currently registered.
    var subscriberCount: Int { subscriberKeys.count }
    /// Outcome ids remembered for pending keys.
    var rememberedIDCount: Int { keys.values.reduce(0) { $0 + $1.ids.count } }

    /// Keys the replica confirmed with `subscribed` on the current connection.
    var confirmedKeyCount: Int { keys.values.reduce(0) { $0 + ($1.confirmed ? 1 : 0) } }

    /// The replica answered `subscribed` for `key`.
    mutating func confirmed(_ key: ProcessInstanceKey) {
        guard isConnected, keys[key]?.subscribedOnConnection == true else { return }
        keys[key]?.confirmed = true
    }

    /// A request starts waiting on `key`; returns the key to send `subscribe` for, when it must be sent now.
    mutating func add(_ subscriber: SubscriberID, key: ProcessInstanceKey) -> ProcessInstanceKey? {
        subscriberKeys[subscriber] = key
        var state = keys[key] ?? KeyState()
        state.subscribers.insert(subscriber)
        defer { keys[key] = state }
        guard isConnected, !state.subscribedOnConnection else { return nil }
        state.subscribedOnConnection = true
        return key
    }

    /// A request ended; returns the key to send `unsubscribe` for when it was the key's last subscriber
    /// and the key is subscribed on the current connection.
    mutating func remove(_ subscriber: SubscriberID) -> ProcessInstanceKey? {
        guard let key = subscriberKeys.removeValue(forKey: subscriber), var state = keys[key] else { return nil }
        state.subscribers.remove(subscriber)
        guard state.subscribers.isEmpty else {
            keys[key] = state
            return nil
        }
        keys[key] = nil
        for (id, idState) in state.ids where idState == .handedOver {
            recentIDs.insert(id)
        }
        return isConnected && state.subscribedOnConnection ? key : nil
    }

    /// The key a request waits on.
    func key(of subscriber: SubscriberID) -> ProcessInstanceKey? {
        subscriberKeys[subscriber]
    }

    /// The subscribers of `key`.
    func subscribers(of key: ProcessInstanceKey) -> [SubscriberID] {
        keys[key].map { $0.subscribers.sorted() } ?? []
    }

    /// A connection was welcomed: returns every pending key to (re-)subscribe, in key order.
    mutating func connected() -> [ProcessInstanceKey] {
        isConnected = true
        let pending = keys.keys.sorted()
        for key in pending { keys[key]?.subscribedOnConnection = true }
        return pending
    }

    /// The connection is gone: nothing is subscribed any more until the next ``connected()``.
    mutating func disconnected() {
        isConnected = false
        for key in keys.keys {
            keys[key]?.subscribedOnConnection = false
            keys[key]?.confirmed = false
        }
    }

    /// Decides what to do with an outcome from the replica.
    mutating func received(_ outcome: Outcome) -> ReceiveDecision {
        guard var state = keys[outcome.key], !state.subscribers.isEmpty else {
            return recentIDs.contains(outcome.id) ? .acknowledgeDuplicate : .noSubscriber
        }
        switch state.ids[outcome.id] {
        case .handedOver:
            return .acknowledgeDuplicate
        case .buffered:
            return .dropDuplicate
        case nil:
            if recentIDs.contains(outcome.id) { return .acknowledgeDuplicate }
            state.ids[outcome.id] = .buffered
            keys[outcome.key] = state
            return .deliver(state.subscribers.sorted())
        }
    }

    /// A consumer took the outcome; returns true when the ack must be sent now (the first hand-over).
    mutating func handedOver(id: String, key: ProcessInstanceKey) -> Bool {
        guard var state = keys[key] else {
            recentIDs.insert(id)
            return true
        }
        guard state.ids[id] != .handedOver else { return false }
        state.ids[id] = .handedOver
        keys[key] = state
        return true
    }
}

/// A bounded set of outcome ids, forgetting the oldest first.
struct RecentIDSet: Sendable {
    let capacity: Int
    private var members: Set<String> = []
    private var order: [String] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 0)
    }

    var count: Int { members.count }

    func contains(_ id: String) -> Bool { members.contains(id) }

    mutating func insert(_ id: String) {
        guard capacity > 0, members.insert(id).inserted else { return }
        order.append(id)
        while members.count > capacity {
            members.remove(order[head])
            head += 1
        }
        if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
