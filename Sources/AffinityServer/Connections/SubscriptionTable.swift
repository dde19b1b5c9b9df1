import AffinityProtocol

/// The subscriptions of one connection and how each takes its key's parked backlog, without I/O.
///
/// A subscribe reads the first page of the key's parked outcomes (``Entry/reading(parkedSince:)``).
/// While a read runs or a page waits for its acks, live outcomes for the key are refused: they park
/// behind the backlog and a later read finds them, so nothing overtakes an older outcome and the
/// connection never holds more than one page of the backlog. When a page is the last one and nothing
/// was parked since its read began, the key turns ``Entry/active``: live outcomes are sent at once.
/// Otherwise the next page is read once every outcome of this one was acknowledged (and so removed
/// from the store, which is why the next page starts at the head again).
struct SubscriptionTable {
    enum Entry: Equatable {
        /// A read of parked outcomes runs; `parkedSince` records an outcome parked after it began.
        case reading(parkedSince: Bool)
        /// A page was sent; the next read starts once each of `unacknowledged` was acknowledged.
        case paging(unacknowledged: Set<String>)
        /// Caught up: live outcomes are sent at once.
        case active
    }

    enum BeginResult: Equatable {
        /// Newly registered; the caller registers the key and reads the first page.
        case started
        /// Already subscribed (re-subscribe): the caller reads from the first page again.
        case alreadySubscribed
        /// The connection holds the maximum number of subscriptions.
        case limitReached
    }

    enum OfferResult: Equatable {
        /// Active: send the outcome now.
        case send
        /// The key is taking its backlog: the outcome must park behind it.
        case refused
        /// Not subscribed to this key.
        case notSubscribed
    }

    /// What to do after a page was read and handed over.
    enum PageResult: Equatable {
        /// The backlog is taken: the key is active.
        case active
        /// Wait for the acks of the page, then read the next one.
        case waitForAcknowledgements
        /// Read the next page now (the page was empty but something was parked meanwhile).
        case readAgain
        /// The key was unsubscribed meanwhile: drop the page.
        case unsubscribed
    }

    private(set) var entries: [ProcessInstanceKey: Entry] = [:]
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    var count: Int { entries.count }

    func contains(_ key: ProcessInstanceKey) -> Bool { entries[key] != nil }

    mutating func begin(_ key: ProcessInstanceKey) -> BeginResult {
        if entries[key] != nil {
            entries[key] = .reading(parkedSince: false)
            return .alreadySubscribed
        }
        guard entries.count < limit else { return .limitReached }
        entries[key] = .reading(parkedSince: false)
        return .started
    }

    mutating func offer(for key: ProcessInstanceKey) -> OfferResult {
        switch entries[key] {
        case .some(.active):
            return .send
        case .some(.reading):
            entries[key] = .reading(parkedSince: true)
            return .refused
        case .some(.paging):
            return .refused
        case .none:
            return .notSubscribed
        }
    }

    /// A page read for `key` finished with the outcomes `ids`; `hasMore` when more are parked behind them.
    mutating func pageRead(_ key: ProcessInstanceKey, ids: [String], hasMore: Bool) -> PageResult {
        guard case .some(.reading(let parkedSince)) = entries[key] else {
            return entries[key] == nil ? .unsubscribed : .waitForAcknowledgements
        }
        guard hasMore || parkedSince else {
            entries[key] = .active
            return .active
        }
        let unacknowledged = Set(ids)
        if unacknowledged.isEmpty {
            guard parkedSince else {
                entries[key] = .active
                return .active
            }
            entries[key] = .reading(parkedSince: false)
            return .readAgain
        }
        entries[key] = .paging(unacknowledged: unacknowledged)
        return .waitForAcknowledgements
    }

    /// The read for `key` failed: stop taking the backlog for now (a later hint reads again).
    mutating func readFailed(_ key: ProcessInstanceKey) {
        if case .some(.reading) = entries[key] { entries[key] = .active }
    }

    /// The outcome `id` of `key` was acknowledged (and removed from the store). Returns true when the next
    /// page must be read now.
    mutating func acknowledged(_ key: ProcessInstanceKey, id: String) -> Bool {
        guard case .some(.paging(var unacknowledged)) = entries[key], unacknowledged.remove(id) != nil else {
            return false
        }
        if unacknowledged.isEmpty {
            entries[key] = .reading(parkedSince: false)
            return true
        }
        entries[key] = .paging(unacknowledged: unacknowledged)
        return false
    }

    /// Outcomes are parked for `key` that this connection may not have seen (the store said so after a route
    /// refresh, or a delivery parked one). Returns true when a read must start now.
    mutating func parkedWaiting(_ key: ProcessInstanceKey) -> Bool {
        switch entries[key] {
        case .some(.active):
            entries[key] = .reading(parkedSince: false)
            return true
        case .some(.reading):
            entries[key] = .reading(parkedSince: true)
            return false
        case .some(.paging), .none:
            return false
        }
    }

    /// Removes the key; returns whether it was subscribed.
    mutating func remove(_ key: ProcessInstanceKey) -> Bool {
        entries.removeValue(forKey: key) != nil
    }

    /// Removes everything; returns the keys that were subscribed.
    mutating func removeAll() -> [ProcessInstanceKey] {
        let keys = Array(entries.keys)
        entries.removeAll()
        return keys
    }
}
