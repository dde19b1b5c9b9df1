public import NIOCore
import Synchronization

/// A sleep on a timer of an injected event loop, that ends when its time has passed, at once when the
/// sleeping task is cancelled (the timer is removed then: `Task.sleep` leaves one behind until it would have
/// fired), or early when ``wake()`` or ``stop()`` is called.
///
/// One task sleeps on a sleeper at a time; sleeps follow one another.
///
/// ```swift
/// let backoff = EventLoopSleeper(eventLoop: group.any())
/// while !stopping {
///     try? await backoff.sleep(for: .seconds(1))   // a shutdown handler calls backoff.stop()
/// }
/// ```
public final class EventLoopSleeper: Sendable {
    private struct Sleeping {
        /// Tells this sleep's timer from an earlier one whose cancellation came too late.
        let number: UInt64
        let continuation: CheckedContinuation<Void, any Error>
        let timer: Scheduled<Void>
    }

    private struct State {
        var sleeps: UInt64 = 0
        var sleeping: Sleeping?
        var stopped = false
    }

    private let eventLoop: any EventLoop
    private let state = Mutex(State())

    /// A sleeper whose timers run on `eventLoop` (and whose clock is that loop's).
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Returns once `duration` has passed on the event loop, or when ``wake()`` or ``stop()`` is called (at once
    /// after ``stop()``).
    ///
    /// - Throws: `CancellationError` as soon as the task is cancelled (also when it was cancelled before).
    public func sleep(for duration: Duration) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate: Result<Void, any Error>? = self.state.withLock { state in
                    if state.stopped { return .success(()) }
                    // Read under the lock: a cancellation handler that ran before found nothing to cancel.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    precondition(state.sleeping == nil, "two tasks sleep on one EventLoopSleeper")
                    state.sleeps += 1
                    let number = state.sleeps
                    let timer = self.eventLoop.scheduleTask(in: TimeAmount(duration)) { self.timerFired(number) }
                    state.sleeping = Sleeping(number: number, continuation: continuation, timer: timer)
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            if let sleeping = self.state.withLock({ $0.sleeping.take() }) {
                sleeping.timer.cancel()
                sleeping.continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Ends the sleep in progress early, if a task sleeps; a later sleep waits its full time.
    public func wake() {
        self.end(self.state.withLock { $0.sleeping.take() })
    }

    /// Ends the sleep in progress, and every later one at once (a service that stops).
    public func stop() {
        self.end(
            self.state.withLock { state in
                state.stopped = true
                return state.sleeping.take()
            })
    }

    /// Whether a task sleeps now (for tests).
    var isSleeping: Bool {
        self.state.withLock { $0.sleeping != nil }
    }

    /// The timer of sleep `number` fired.
    private func timerFired(_ number: UInt64) {
        let sleeping = self.state.withLock { state -> Sleeping? in
            guard state.sleeping?.number == number else { return nil }
            return state.sleeping.take()
        }
        sleeping?.continuation.resume()
    }

    private func end(_ sleeping: Sleeping?) {
        guard let sleeping else { return }
        sleeping.timer.cancel()
        sleeping.continuation.resume()
    }
}
