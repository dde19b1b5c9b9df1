import NIOCore

/// Items in the order they came, at most `limit` of them and none older than `window`: what a peer stream
/// remembers for a failure that comes late (its `delivered` answers, its timed-out forwards). Appending and
/// forgetting are O(1). I/O-free; the caller passes the clock.
struct RecentItems<Item> {
    let window: Duration
    let limit: Int
    /// Oldest first.
    private var items = CircularBuffer<(item: Item, at: ContinuousClock.Instant)>()

    init(window: Duration, limit: Int) {
        self.window = window
        self.limit = max(1, limit)
    }

    /// Whether something remembered at `at` is still recent at `now`.
    func isRecent(_ at: ContinuousClock.Instant, now: ContinuousClock.Instant) -> Bool {
        now - at < window
    }

    /// Appends `item` and forgets the oldest items beyond the limit or the window.
    mutating func append(_ item: Item, at now: ContinuousClock.Instant) {
        items.append((item, now))
        while forgetOldest(now: now) != nil {}
    }

    /// Appends `item` without forgetting anything: the caller then calls ``forgetOldest(now:)`` until it returns
    /// `nil`, to clean up what it keeps about each forgotten item.
    mutating func appendKeepingOldest(_ item: Item, at now: ContinuousClock.Instant) {
        items.append((item, now))
    }

    /// Removes and returns the oldest item if it is beyond the limit or the window at `now`.
    mutating func forgetOldest(now: ContinuousClock.Instant) -> (item: Item, at: ContinuousClock.Instant)? {
        guard let oldest = items.first, items.count > limit || !isRecent(oldest.at, now: now) else { return nil }
        return items.removeFirst()
    }

    /// The items still recent at `now`, oldest first; forgets every item.
    mutating func removeAll(now: ContinuousClock.Instant) -> [Item] {
        defer { items.removeAll() }
        return items.filter { isRecent($0.at, now: now) }.map(\.item)
    }

    /// How many items are remembered.
    var count: Int { items.count }
}
