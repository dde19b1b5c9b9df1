import AffinityProtocol

/// The subscriptions of one connection, without I/O.
///
/// A subscribe first registers the key as `loading` (so live outcomes for it are held back), then
/// reads the parked outcomes from the store, then becomes `active`: the client receives
/// `subscribed`, the parked outcomes, and only then the live outcomes that arrived meanwhile, so
/// nothing overtakes an older outcome.
struct SubscriptionTable<Pending> {
    enum Entry {
        case loading(held: [Pending])
        case active
    }

    enum BeginResult: Equatable {
        /// Newly registered; the caller must also register the key with the connection registry.
        case started
        /// Already subscribed (re-subscribe): read parked outcomes again, keep the registration.
        case alreadySubscribed
        /// The connection holds the maximum number of subscriptions.
        case limitReached
    }

    enum OfferResult {
        /// Active: send the outcome now.
        case send
        /// Loading: the outcome was held back and is returned by ``complete(_:)``.
        case held
        /// Not subscribed to this key.
        case notSubscribed
    }

    private(set) var entries: [ProcessInstanceKey: Entry] = [:]
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    var count: Int { entries.count }

    func contains(_ key: ProcessInstanceKey) -> Bool { entries[key] != nil }

    mutating func begin(_ key: ProcessInstanceKey) -> BeginResult {
        switch entries[key] {
        case .some(.active):
            entries[key] = .loading(held: [])
            return .alreadySubscribed
        case .some(.loading):
            return .alreadySubscribed
        case .none:
            guard entries.count < limit else { return .limitReached }
            entries[key] = .loading(held: [])
            return .started
        }
    }

    mutating func offer(_ pending: Pending, for key: ProcessInstanceKey) -> OfferResult {
        switch entries[key] {
        case .some(.active):
            return .send
        case .some(.loading(var held)):
            held.append(pending)
            entries[key] = .loading(held: held)
            return .held
        case .none:
            return .notSubscribed
        }
    }

    /// Marks the key active and returns the outcomes held back while loading, in arrival order.
    /// Returns nil when the key was unsubscribed meanwhile.
    mutating func complete(_ key: ProcessInstanceKey) -> [Pending]? {
        guard case .some(.loading(let held)) = entries[key] else {
            return entries[key] == nil ? nil : []
        }
        entries[key] = .active
        return held
    }

    /// Removes the key; returns the outcomes still held back for it (now undeliverable here).
    mutating func remove(_ key: ProcessInstanceKey) -> [Pending]? {
        guard let entry = entries.removeValue(forKey: key) else { return nil }
        if case .loading(let held) = entry { return held }
        return []
    }

    /// Removes everything; returns every held-back outcome and the keys that were subscribed.
    mutating func removeAll() -> (keys: [ProcessInstanceKey], held: [Pending]) {
        var held: [Pending] = []
        for entry in entries.values {
            if case .loading(let pending) = entry { held.append(contentsOf: pending) }
        }
        let keys = Array(entries.keys)
        entries.removeAll()
        return (keys, held)
    }
}
