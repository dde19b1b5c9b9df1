import EventLoopTimers
import NIOCore

/// The ack timeouts of the live deliveries of one replica, as ``CoalescedDeadlines`` on an event loop of the
/// replica: deliveries whose deadlines fall into the same `granularity` share one timer, instead of one timer
/// scheduled and cancelled per delivery.
///
/// A delivery registers when it starts waiting (``start(_:)``) and leaves when it is decided (``stop(_:)``);
/// when the timer of its slot fires, every delivery still registered there times out. A deadline is rounded
/// up to its slot's end, so an ack timeout is never shorter than configured, and at most `granularity`
/// longer.
final class AckTimeouts: Sendable {
    /// Where a delivery is registered; give it back to ``stop(_:)``.
    typealias Slot = CoalescedDeadlines<PendingDelivery>.Registration

    private let deadlines: CoalescedDeadlines<PendingDelivery>
    /// The ack timeout.
    let timeout: Duration

    /// Ack timeouts of `timeout` on `eventLoop`'s timers; deadlines within a hundredth of the timeout (1 to
    /// 10 ms) share a timer.
    init(timeout: Duration, eventLoop: any EventLoop) {
        self.timeout = timeout
        let granularity = min(.milliseconds(10), max(.milliseconds(1), timeout / 100))
        self.deadlines = CoalescedDeadlines(eventLoop: eventLoop, granularity: granularity) { $0.timedOut() }
    }

    /// Deadlines within one granularity share a timer.
    var granularity: TimeAmount { deadlines.granularity }

    /// Starts the ack timeout of `delivery`: ``PendingDelivery/timedOut()`` is called at the deadline unless
    /// ``stop(_:)`` came first.
    func start(_ delivery: PendingDelivery) -> Slot {
        deadlines.register(delivery, in: timeout)
    }

    /// The delivery of `slot` was decided: its timeout no longer applies.
    func stop(_ slot: Slot) {
        deadlines.cancel(slot)
    }

    /// Every delivery registered times out now (the replica's sessions are cancelled: no delivery waits for
    /// its ack any more, as when its waiting task was cancelled).
    func expireAll() {
        deadlines.expireAll()
    }
}
