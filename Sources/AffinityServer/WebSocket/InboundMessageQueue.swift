import NIOCore
import Synchronization

/// The messages of one WebSocket connection on their way from its channel handler (on the event
/// loop) to its session, with back-pressure: while ``highWatermark`` messages wait, the handler
/// stops reading from the socket; once the session has taken the queue down to ``lowWatermark``,
/// reading resumes.
///
/// One consumer only, in one of two ways:
/// - a task that waits on ``next()`` for the connection's whole life (the legacy protocol's session);
/// - a consumer that runs only while there is work (``WebSocketSession``, run by ``SessionRunner``):
///   once ``attach(wake:)``ed, the queue calls `wake` when a message or the end arrives while the
///   consumer is not running; the consumer then takes messages with ``nextUntilIdle()`` until it
///   says `idle`, and stops with ``stopIfIdle()``. An idle connection has no task.
///
/// No `AsyncStream`: a waiting consumer waits on a continuation. The message storage is released
/// whenever the queue drains, so an idle connection holds none.
final class InboundMessageQueue: Sendable {
    /// Messages waiting at which reading from the socket pauses.
    static let highWatermark = 16
    /// Messages waiting at which paused reading resumes.
    static let lowWatermark = 4

    /// What ``nextUntilIdle()`` found.
    enum Next {
        /// The next message.
        case message(InboundMessage)
        /// Nothing queued and no work of the consumer's runs: it may stop (``stopIfIdle()``).
        case idle
        /// The queue is finished and empty, or the task is cancelled: the connection ends.
        case end
    }

    private struct State {
        var messages: [InboundMessage] = []
        var head = 0
        var finished = false
        var readingPaused = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Work the consumer started that keeps it running while no message waits (delivery chains).
        var busy = 0
        /// Starts the consumer, once attached.
        var wake: (@Sendable () -> Void)?
        /// The attached consumer runs (or was woken and is about to).
        var running = false

        var count: Int { messages.count - head }

        /// The wake-up to call when something arrived: nil while the consumer runs or none is attached.
        mutating func takeWake() -> (@Sendable () -> Void)? {
            guard let wake, !running else { return nil }
            running = true
            return wake
        }
    }

    private let state = Mutex(State())
    private let channel: any Channel

    /// - Parameter channel: the channel whose reading resumes when the queue drains.
    init(channel: any Channel) {
        self.channel = channel
    }

    /// Queues a message (event loop, or any thread for a session's own work). Ignored once finished.
    func push(_ message: InboundMessage) {
        let (waiter, wake) = state.withLock { state -> (CheckedContinuation<Void, Never>?, (@Sendable () -> Void)?) in
            guard !state.finished else { return (nil, nil) }
            state.messages.append(message)
            defer { state.waiter = nil }
            return (state.waiter, state.takeWake())
        }
        waiter?.resume()
        wake?()
    }

    /// No more messages will come; the session gets those queued, then the end.
    func finish() {
        let (waiter, wake) = state.withLock { state -> (CheckedContinuation<Void, Never>?, (@Sendable () -> Void)?) in
            state.finished = true
            defer { state.waiter = nil }
            return (state.waiter, state.takeWake())
        }
        waiter?.resume()
        wake?()
    }

    /// Whether the handler must hold back a read (event loop). When it returns true, the queue
    /// calls `channel.read()` once it has drained to ``lowWatermark``.
    func shouldPauseReading() -> Bool {
        state.withLock { state in
            guard state.count >= Self.highWatermark, !state.finished else { return false }
            state.readingPaused = true
            return true
        }
    }

    // MARK: - A consumer that runs only while there is work

    /// Attaches the consumer that runs only while there is work: `wake` is called whenever a message
    /// or the end arrives while it is not running, and at once when something arrived before.
    func attach(wake: @escaping @Sendable () -> Void) {
        let wakeNow = state.withLock { state -> (@Sendable () -> Void)? in
            state.wake = wake
            guard state.count > 0 || state.finished else { return nil }
            return state.takeWake()
        }
        wakeNow?()
    }

    /// Forgets the consumer (the connection ended): nothing wakes it any more.
    func detach() {
        state.withLock { $0.wake = nil }
    }

    /// Wakes the attached consumer unless it runs (it then sees the end, e.g. on cancellation).
    func wakeIfIdle() {
        state.withLock { $0.takeWake() }?()
    }

    /// The consumer started work that must finish before it stops (a delivery chain).
    func workStarted() {
        state.withLock { $0.busy += 1 }
    }

    /// Work of ``workStarted()`` finished; the last one lets a consumer waiting for messages stop.
    func workEnded() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.busy -= 1
            guard state.busy == 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The next message; `idle` when none is queued and no work of ``workStarted()`` runs (it waits
    /// for a message while work runs); `end` once the queue is finished and empty, or the task is
    /// cancelled.
    func nextUntilIdle() async -> Next {
        switch await take(untilIdle: true) {
        case .some(let message): return .message(message)
        case .none: return isFinishedOrCancelled ? .end : .idle
        }
    }

    /// The consumer stops unless something arrived since it saw `idle`: returns true when it stopped
    /// (the next message or the end wakes it again), false when it must take what arrived.
    func stopIfIdle() -> Bool {
        state.withLock { state in
            guard state.count == 0, !state.finished else { return false }
            state.running = false
            return true
        }
    }

    private var isFinishedOrCancelled: Bool {
        Task.isCancelled || state.withLock { $0.finished && $0.count == 0 }
    }

    // MARK: - A consumer for the connection's whole life

    /// The next message, or nil once the queue is finished and empty, or the task is cancelled.
    func next() async -> InboundMessage? {
        await take(untilIdle: false)
    }

    /// The next message; nil at the end, on cancellation, and (`untilIdle`) when the consumer is idle.
    private func take(untilIdle: Bool) async -> InboundMessage? {
        while true {
            let (message, resumeReading, done) = state.withLock { state -> (InboundMessage?, Bool, Bool) in
                guard state.head < state.messages.count else {
                    return (nil, false, state.finished || (untilIdle && state.busy == 0))
                }
                let message = state.messages[state.head]
                state.head += 1
                if state.head == state.messages.count {
                    // an idle connection holds no message storage
                    state.messages = []
                    state.head = 0
                }
                var resume = false
                if state.readingPaused && state.count <= Self.lowWatermark {
                    state.readingPaused = false
                    resume = true
                }
                return (message, resume, false)
            }
            if resumeReading { channel.read() }
            if let message { return message }
            if done || Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        guard state.head == state.messages.count, !state.finished, !Task.isCancelled,
                            !(untilIdle && state.busy == 0)
                        else {
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
    }
}
