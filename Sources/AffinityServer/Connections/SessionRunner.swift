import Logging
import ServiceLifecycle
import Synchronization

/// Runs the protocol v1 sessions of one replica, each in a task of this service's task group only
/// while it has work: a message to answer, a delivery chain of its worker, or its end. An idle
/// connection has no task (a parked task with its frames cost a few KiB per connection).
///
/// A session's connection wakes it (``schedule(_:)``, from ``InboundMessageQueue``); the session
/// runs until it is idle again, and never twice at once. Like the task per connection it replaces,
/// every session still ends in a task: on graceful shutdown this service returns once every session
/// has ended (it runs before the HTTP server starts, so it stops after the server closed every
/// connection); on cancellation it wakes every idle session, which then ends at once, as a cancelled
/// connection task did.
final class SessionRunner: Service, Sendable {
    private struct State {
        /// Sessions woken and not yet given a task, in wake order.
        var ready: [WebSocketSession] = []
        var readyHead = 0
        var waiter: CheckedContinuation<Void, Never>?
        /// Every session started and not ended, by connection.
        var live: [ConnectionID: WebSocketSession] = [:]
        /// Graceful shutdown or cancellation: the loop ends once no session is live.
        var stopping = false
        /// The loop ended: a session that starts now is ended at once.
        var ended = false

        var hasReady: Bool { readyHead < ready.count }
    }

    /// What every session of the replica shares (held here once, not copied into each session).
    let environment: SessionEnvironment
    /// The logger of every session.
    let logger: Logger
    private let state = Mutex(State())

    init(environment: SessionEnvironment, logger: Logger) {
        self.environment = environment
        self.logger = logger
    }

    /// Starts a session: it runs whenever its connection has work. Returns false when this service
    /// has already stopped (the caller closes the connection).
    func start(_ session: WebSocketSession) -> Bool {
        let started = state.withLock { state -> Bool in
            guard !state.ended else { return false }
            state.live[session.connection.connectionID] = session
            return true
        }
        return started
    }

    /// Gives a woken session a task (its queue calls this at most once per idle period).
    func schedule(_ session: WebSocketSession) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.ready.append(session)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// A session ended (its clean-up is done).
    func ended(_ session: WebSocketSession) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.live[session.connection.connectionID] = nil
            guard state.stopping, state.live.isEmpty else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Runs sessions until graceful shutdown or cancellation, then until every session ended.
    func run() async {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    while let session = await nextReady() {
                        group.addTask { await session.runUntilIdle() }
                    }
                }
            } onCancel: {
                // every idle session runs once more and sees the cancellation: it ends, as a cancelled
                // connection task did; deliveries waiting without a task for their acks stop waiting, as those of
                // cancelled tasks do
                self.stop()
                self.environment.coordinator.giveUpWaitingForAcks()
                for session in self.state.withLock({ Array($0.live.values) }) {
                    session.wakeIfIdle()
                }
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func stop() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.stopping = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The next woken session; nil once stopping and no session is live.
    private func nextReady() async -> WebSocketSession? {
        while true {
            let session = state.withLock { state -> WebSocketSession?? in
                if state.hasReady {
                    let session = state.ready[state.readyHead]
                    state.readyHead += 1
                    if state.readyHead == state.ready.count {
                        state.ready.removeAll(keepingCapacity: true)
                        state.readyHead = 0
                    }
                    return .some(session)
                }
                if state.stopping && state.live.isEmpty {
                    state.ended = true
                    return .some(nil)
                }
                return nil
            }
            if let session { return session }
            // not cancellable: on cancellation the sessions still end (see run())
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard !state.hasReady, !(state.stopping && state.live.isEmpty) else { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }
}
