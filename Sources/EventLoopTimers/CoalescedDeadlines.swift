public import NIOCore
import Synchronization

/// Deadlines on an injected event loop that share timers: those that fall into the same `granularity` slot
/// of the loop's clock expire together, on one timer, instead of one timer scheduled and cancelled each.
///
/// An element is registered with its delay (``register(_:in:)``) and leaves with ``cancel(_:)``; when the
/// timer of its slot fires, every element still registered there is handed to `expired`, on the event loop.
/// A deadline is rounded up to the end of its slot: it never expires before its delay, and at most
/// `granularity` after. Per deadline this is one dictionary insert and one removal under a lock; the timer
/// (with its promise, its place in the event loop's heap and, when it is the earliest one, a re-armed
/// timerfd) is paid once per slot that has deadlines, and stays armed when its slot empties.
///
/// ```swift
/// let timeouts = CoalescedDeadlines<PendingDelivery>(eventLoop: group.any(), granularity: .milliseconds(10)) {
///     $0.timedOut()
/// }
/// let registration = timeouts.register(delivery, in: .seconds(30))
/// // ... the delivery was decided in time:
/// timeouts.cancel(registration)
/// ```
public final class CoalescedDeadlines<Element: Sendable>: Sendable {
    /// Where an element is registered; give it back to ``CoalescedDeadlines/cancel(_:)``.
    public struct Registration: Sendable {
        @usableFromInline let slot: UInt64
        @usableFromInline let number: UInt64

        @inlinable init(slot: UInt64, number: UInt64) {
            self.slot = slot
            self.number = number
        }
    }

    @usableFromInline
    struct State {
        @usableFromInline var slots: [UInt64: [UInt64: Element]] = [:]
        @usableFromInline var registrations: UInt64 = 0

        @inlinable init() {}
    }

    /// Deadlines within one granularity share a timer.
    public let granularity: TimeAmount
    @usableFromInline let eventLoop: any EventLoop
    @usableFromInline let state = Mutex(State())
    private let expired: @Sendable (Element) -> Void

    /// Deadlines on `eventLoop`'s clock and timers, in slots of `granularity`; `expired` is called with each
    /// element whose deadline passed.
    public init(
        eventLoop: any EventLoop, granularity: Duration, expired: @escaping @Sendable (Element) -> Void
    ) {
        precondition(granularity > .zero, "a deadline slot must be longer than zero")
        self.eventLoop = eventLoop
        self.granularity = TimeAmount(granularity)
        self.expired = expired
    }

    /// Registers `element` to expire once `delay` has passed (at the end of that instant's slot) unless
    /// ``cancel(_:)`` comes first.
    ///
    /// Inlinable, as ``cancel(_:)``: they run once per delivery, and specialised for `Element` in the caller's
    /// module they cost a dictionary insert and removal instead of unspecialised generic code.
    @inlinable
    public func register(_ element: Element, in delay: Duration) -> Registration {
        let deadline = self.eventLoop.now + TimeAmount(max(delay, .zero))
        let width = UInt64(self.granularity.nanoseconds)
        let nanoseconds = deadline.uptimeNanoseconds
        let slot = nanoseconds / width + (nanoseconds % width == 0 ? 0 : 1)
        let (number, firstInSlot) = self.state.withLock { state in
            state.registrations += 1
            // the slot's elements are moved out and back, not changed in place: an in-place change of a nested
            // dictionary goes through `modify` accessors, whose coroutine frames were allocated on every call
            let existing = state.slots.removeValue(forKey: slot)
            let firstInSlot = existing == nil
            var elements = (consume existing) ?? [:]
            elements[state.registrations] = element
            state.slots[slot] = elements
            return (state.registrations, firstInSlot)
        }
        if firstInSlot {
            let (end, overflow) = slot.multipliedReportingOverflow(by: width)
            self.eventLoop.scheduleTask(deadline: overflow ? .distantFuture : .uptimeNanoseconds(end)) {
                self.expire(slot)
            }
        }
        return Registration(slot: slot, number: number)
    }

    /// The element of `registration` does not expire (nothing happens when it expired already).
    @inlinable
    public func cancel(_ registration: Registration) {
        self.state.withLock { state in
            // moved out and back, as in `register`; a slot that empties stays (its timer is armed)
            guard var elements = state.slots.removeValue(forKey: registration.slot) else { return }
            elements.removeValue(forKey: registration.number)
            state.slots[registration.slot] = elements
        }
    }

    /// Every element registered expires now, on the caller's thread (the slots' timers find nothing then).
    public func expireAll() {
        let all = self.state.withLock { state in
            defer { state.slots = [:] }
            return state.slots
        }
        for elements in all.values {
            for element in elements.values { self.expired(element) }
        }
    }

    /// How many slot timers are armed (for tests).
    var armedTimers: Int {
        self.state.withLock { $0.slots.count }
    }

    /// The timer of `slot` fired: every element still registered there expires.
    @usableFromInline
    func expire(_ slot: UInt64) {
        guard let elements = self.state.withLock({ $0.slots.removeValue(forKey: slot) }) else { return }
        for element in elements.values { self.expired(element) }
    }
}
