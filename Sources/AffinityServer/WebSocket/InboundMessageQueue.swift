import NIOCore
import Synchronization

/// The messages of one WebSocket connection on their way from its channel handler (on the event
/// loop) to its session (the connection's task), with back-pressure: while ``highWatermark``
/// messages wait, the handler stops reading from the socket; once the session has taken the queue
/// down to ``lowWatermark``, reading resumes.
///
/// One consumer only. No task and no `AsyncStream`: the session waits on a continuation.
final class InboundMessageQueue: Sendable {
    /// Messages waiting at which reading from the socket pauses.
    static let highWatermark = 16
    /// Messages waiting at which paused reading resumes.
    static let lowWatermark = 4

    private struct State {
        var messages: [InboundMessage] = []
        var head = 0
        var finished = false
        var readingPaused = false
        var waiter: CheckedContinuation<Void, Never>?

        var count: Int { messages.count - head }
    }

    private let state = Mutex(State())
    private let channel: any Channel

    /// - Parameter channel: the channel whose reading resumes when the queue drains.
    init(channel: any Channel) {
        self.channel = channel
    }

    /// Queues a message (event loop). Ignored once finished.
    func push(_ message: InboundMessage) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.finished else { return nil }
            state.messages.append(message)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// No more messages will come; the session gets those queued, then nil.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
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

    /// The next message, or nil once the queue is finished and empty, or the task is cancelled.
    func next() async -> InboundMessage? {
        while true {
            let (message, resumeReading, done) = state.withLock { state -> (InboundMessage?, Bool, Bool) in
                guard state.head < state.messages.count else { return (nil, false, state.finished) }
                let message = state.messages[state.head]
                state.head += 1
                if state.head == state.messages.count {
                    state.messages.removeAll(keepingCapacity: state.messages.capacity <= 4)
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
                        guard state.head == state.messages.count, !state.finished, !Task.isCancelled else {
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
