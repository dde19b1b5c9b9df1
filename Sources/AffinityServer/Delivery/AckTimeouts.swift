import NIOCore
import NIOPosix
import Synchronization

/// The ack timeouts of the live deliveries of one replica: deliveries whose deadlines fall into the same
/// `granularity` share one event-loop timer, instead of one timer scheduled and cancelled per delivery.
///
/// A delivery registers when it starts waiting (``start(_:)``) and leaves when it is decided (``stop(_:in:)``);
/// when the timer of its slot fires, every delivery still registered there times out. A deadline is rounded
/// up to its slot's end, so an ack timeout is never shorter than configured, and at most `granularity`
/// longer. Per delivery this is one dictionary insert and one removal; the timer (with its promise, its
/// place in the event loop's heap and, when it is the earliest one, a re-armed timerfd) is paid once per
/// slot that has deliveries.
final class AckTimeouts: Sendable {
    /// Where a delivery is registered; give it back to ``stop(_:in:)``.
    struct Slot: Sendable {
        fileprivate let index: UInt64
    }

    private let slots = Mutex<[UInt64: [ObjectIdentifier: PendingDelivery]]>([:])
    private let eventLoop: any EventLoop
    /// The ack timeout.
    let timeout: TimeAmount
    /// Deadlines within one granularity share a timer: a hundredth of the timeout, 1 to 10 ms.
    let granularity: TimeAmount

    init(timeout: Duration, eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) {
        self.timeout = TimeAmount(timeout)
        let hundredth = self.timeout.nanoseconds / 100
        self.granularity = .nanoseconds(min(10_000_000, max(1_000_000, hundredth)))
        self.eventLoop = eventLoop
    }

    /// Starts the ack timeout of `delivery`: ``PendingDelivery/timedOut()`` is called at the deadline unless
    /// ``stop(_:in:)`` came first.
    func start(_ delivery: PendingDelivery) -> Slot {
        let deadline = NIODeadline.now() + timeout
        let width = UInt64(granularity.nanoseconds)
        let index = (deadline.uptimeNanoseconds + width - 1) / width
        let firstInSlot = slots.withLock { slots in
            let firstInSlot = slots[index] == nil
            slots[index, default: [:]][ObjectIdentifier(delivery)] = delivery
            return firstInSlot
        }
        if firstInSlot {
            eventLoop.scheduleTask(deadline: .uptimeNanoseconds(index * width)) { self.expire(index) }
        }
        return Slot(index: index)
    }

    /// `delivery` was decided: its timeout no longer applies.
    func stop(_ delivery: PendingDelivery, in slot: Slot) {
        slots.withLock { slots in
            _ = slots[slot.index]?.removeValue(forKey: ObjectIdentifier(delivery))
        }
    }

    /// Every delivery registered times out now (the replica's sessions are cancelled: no delivery waits for
    /// its ack any more, as when its waiting task was cancelled).
    func expireAll() {
        let all = slots.withLock { slots in
            defer { slots = [:] }
            return slots
        }
        for deliveries in all.values {
            for delivery in deliveries.values { delivery.timedOut() }
        }
    }

    /// The timer of slot `index` fired: every delivery still registered there timed out.
    private func expire(_ index: UInt64) {
        guard let expired = slots.withLock({ $0.removeValue(forKey: index) }) else { return }
        for delivery in expired.values { delivery.timedOut() }
    }
}
