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
/// A consumer that runs only while there is work may also take messages at once, on the event loop,
/// without a task (``attach(wake:immediate:)``): a message that arrives while nothing is queued and the
/// consumer does not run is offered to its ``ImmediateMessageHandler`` first, in the channel's read; what
/// that cannot finish without waiting is queued for the consumer as usual, in the same order.
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
        /// Work the consumer handed to itself (``pushWork(_:)``): taken before messages, also after the end.
        case work(InboundMessage)
        /// The queue is finished and empty, or the task is cancelled, and no work of the consumer's runs
        /// or waits: the connection ends.
        case end
    }

    private struct State {
        var messages: [InboundMessage] = []
        var head = 0
        var finished = false
        var readingPaused = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Work the consumer started that keeps it running while no message waits (its tasks).
        var busy = 0
        /// Work the consumer started that runs without a task (delivery chains waiting for acks): it does not
        /// keep the consumer running, but the consumer does not end before it ended.
        var held = 0
        /// Work handed back to the consumer (``pushWork(_:)``), taken before messages, accepted after the end.
        var work: [InboundMessage] = []
        /// Takes a message on the event loop when nothing is queued and the consumer does not run.
        var immediate: (any ImmediateMessageHandler)?
        /// Starts the consumer, once attached.
        var wake: (@Sendable () -> Void)?
        /// The attached consumer runs (or was woken and is about to).
        var running = false

        var count: Int { messages.count - head }

        /// Whether the consumer has something to take now (or must see the end).
        var hasWork: Bool { count > 0 || finished || !work.isEmpty }

        /// What a consumer that runs until idle sees when no work and no message waits: `end` (finished or
        /// cancelled, and none of its work left), `idle` (none of its tasks runs), or nil: it waits.
        var untilIdleOutcome: Next? {
            if finished || Task.isCancelled { return busy == 0 && held == 0 ? .end : nil }
            return busy == 0 ? .idle : nil
        }

        /// Takes the next message; `resumeReading` when the socket's paused reading must resume.
        mutating func takeMessage() -> (message: InboundMessage, resumeReading: Bool)? {
            guard head < messages.count else { return nil }
            let message = messages[head]
            head += 1
            if head == messages.count {
                // an idle connection holds no message storage
                messages = []
                head = 0
            }
            guard readingPaused && count <= InboundMessageQueue.lowWatermark else { return (message, false) }
            readingPaused = false
            return (message, true)
        }

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
    ///
    /// On the event loop, a message that finds nothing queued and the consumer not running is offered to
    /// the consumer's ``ImmediateMessageHandler`` at once (the queue counts as the running consumer meanwhile,
    /// so messages stay in order); what it gives back is queued.
    func push(_ message: InboundMessage) {
        let immediate = state.withLock { state -> (any ImmediateMessageHandler)? in
            guard let immediate = state.immediate, state.wake != nil, !state.running, !state.hasWork else { return nil }
            state.running = true
            return immediate
        }
        if let immediate {
            let rest = immediate.handleImmediately(message)
            let wake = state.withLock { state -> (@Sendable () -> Void)? in
                if let rest, !state.finished { state.messages.append(rest) }
                guard state.hasWork, let wake = state.wake else {
                    state.running = false
                    return nil
                }
                return wake  // the consumer takes over (running stays true)
            }
            wake?()
            return
        }
        let (waiter, wake) = state.withLock { state -> (CheckedContinuation<Void, Never>?, (@Sendable () -> Void)?) in
            guard !state.finished else { return (nil, nil) }
            state.messages.append(message)
            defer { state.waiter = nil }
            return (state.waiter, state.takeWake())
        }
        waiter?.resume()
        wake?()
    }

    /// Hands work back to the consumer (any thread): it takes it before any message, also after the end
    /// (e.g. the rest of a delivery that must wait for the store, ``Next/work(_:)``).
    func pushWork(_ work: InboundMessage) {
        let (waiter, wake) = state.withLock { state -> (CheckedContinuation<Void, Never>?, (@Sendable () -> Void)?) in
            state.work.append(work)
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

    /// Whether the consumer neither runs nor has anything to take: every message so far was handled at once
    /// (``ImmediateMessageHandler``) or earlier.
    var isConsumerIdle: Bool {
        state.withLock { !$0.running && !$0.hasWork }
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
    /// `immediate` is offered the messages that arrive while nothing waits and the consumer does not run.
    func attach(wake: @escaping @Sendable () -> Void, immediate: (any ImmediateMessageHandler)? = nil) {
        let wakeNow = state.withLock { state -> (@Sendable () -> Void)? in
            state.wake = wake
            state.immediate = immediate
            guard state.hasWork else { return nil }
            return state.takeWake()
        }
        wakeNow?()
    }

    /// Forgets the consumer (the connection ended): nothing wakes it any more.
    func detach() {
        state.withLock { state in
            state.wake = nil
            state.immediate = nil
        }
    }

    /// Wakes the attached consumer unless it runs (it then sees the end, e.g. on cancellation).
    func wakeIfIdle() {
        state.withLock { $0.takeWake() }?()
    }

    /// The consumer started work that must finish before it stops (a task of its own).
    func workStarted() {
        state.withLock { $0.busy += 1 }
    }

    /// Work of ``workStarted()`` finished; the last one lets a consumer waiting for messages stop.
    func workEnded() {
        endWork(\.busy)
    }

    /// The consumer started work that runs without a task (a delivery chain waiting for acks): the consumer
    /// may stop meanwhile, but does not end before ``heldWorkEnded()``.
    func heldWorkStarted() {
        state.withLock { $0.held += 1 }
    }

    /// Work of ``heldWorkStarted()`` ended; the last one lets an ending consumer end.
    func heldWorkEnded() {
        endWork(\.held)
    }

    /// Counts one piece of work of `kind` as ended; the last one wakes a consumer waiting for it.
    private func endWork(_ kind: WritableKeyPath<State, Int>) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state[keyPath: kind] -= 1
            guard state[keyPath: kind] == 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Work of ``pushWork(_:)`` first, then the next message; `idle` when none is queued and no work of
    /// ``workStarted()`` runs (it waits for a message while work runs); `end` once the queue is finished and
    /// empty, or the task is cancelled, and no work of ``workStarted()`` or ``heldWorkStarted()`` is left (it
    /// waits for that work meanwhile).
    func nextUntilIdle() async -> Next {
        enum Step {
            case found(Next)
            case wait
        }
        while true {
            let (step, resumeReading) = state.withLock { state -> (Step, Bool) in
                if !state.work.isEmpty { return (.found(.work(state.work.removeFirst())), false) }
                if let (message, resumeReading) = state.takeMessage() {
                    return (.found(.message(message)), resumeReading)
                }
                return (state.untilIdleOutcome.map { .found($0) } ?? .wait, false)
            }
            if resumeReading { channel.read() }
            if case .found(let next) = step { return next }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        guard state.work.isEmpty, state.count == 0, state.untilIdleOutcome == nil else { return true }
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

    /// The consumer stops unless something arrived since it saw `idle`: returns true when it stopped
    /// (the next message or the end wakes it again), false when it must take what arrived.
    func stopIfIdle() -> Bool {
        state.withLock { state in
            guard !state.hasWork else { return false }
            state.running = false
            return true
        }
    }

    // MARK: - A consumer for the connection's whole life

    /// The next message, or nil once the queue is finished and empty, or the task is cancelled.
    func next() async -> InboundMessage? {
        while true {
            let (message, resumeReading, done) = state.withLock { state -> (InboundMessage?, Bool, Bool) in
                guard let (message, resumeReading) = state.takeMessage() else { return (nil, false, state.finished) }
                return (message, resumeReading, false)
            }
            if resumeReading { channel.read() }
            if let message { return message }
            if done || Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        guard state.count == 0, !state.finished, !Task.isCancelled else { return true }
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

/// Handles a connection's messages at once, on the event loop, when that needs no waiting (see
/// ``InboundMessageQueue/attach(wake:immediate:)``).
protocol ImmediateMessageHandler: AnyObject, Sendable {
    /// Handles `message` now if it can without waiting (on the event loop, while no other message of the
    /// connection is queued or being handled). Returns nil when it did, else the message to queue for the
    /// consumer (possibly decoded already); it decides that before it changes anything.
    func handleImmediately(_ message: InboundMessage) -> InboundMessage?
}
