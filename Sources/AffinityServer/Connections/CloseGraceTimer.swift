import NIOCore
import Synchronization

/// Drops a connection whose peer does not complete a close in time. The session arms it when a close is
/// queued (protocol violations, slow consumer, drain); it closes the channel after the grace period unless
/// the session cancels it first. An event-loop timer, armed only when needed, instead of a task parked for
/// the whole life of every connection (about 2 KiB of memory per idle connection).
final class CloseGraceTimer: Sendable {
    private struct State {
        var armed = false
        var scheduled: Scheduled<Void>?
    }

    private let channel: any Channel
    private let grace: TimeAmount
    private let state = Mutex(State())

    init(channel: any Channel, grace: Duration) {
        self.channel = channel
        self.grace = TimeAmount(grace)
    }

    /// Starts the grace period (the first call only).
    func arm() {
        let channel = self.channel
        state.withLock { state in
            guard !state.armed else { return }
            state.armed = true
            state.scheduled = channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
        }
    }

    /// The session ended: no forced close any more, now or later.
    func cancel() {
        let scheduled = state.withLock { state -> Scheduled<Void>? in
            state.armed = true
            defer { state.scheduled = nil }
            return state.scheduled
        }
        scheduled?.cancel()
    }
}
