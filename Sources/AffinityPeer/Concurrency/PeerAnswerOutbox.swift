import Synchronization

/// The answers of one `DeliverStream` on their way to the stream's single writer, which writes whatever is
/// queued in one go (one HTTP/2 DATA write, one TLS record, one syscall for all answers that completed while
/// the previous write was under way), like the caller's side does with its requests.
///
/// Deliveries ``post(_:delivery:)`` their answers; the writer loops on ``nextBatch()``. Once the reader saw
/// the end of the requests it calls ``finishWhenIdle()``: the writer gets `nil` after the last open delivery
/// posted and everything was taken. When the writer stops for any other reason (the stream broke, the task
/// was cancelled) it calls ``abandon()``: what is queued and what is posted later is dropped, and the slots
/// those answers held are handed back, so the reader never waits for a slot that no write will free. Only one
/// task may wait in ``nextBatch()``.
final class PeerAnswerOutbox<Answer: Sendable>: Sendable {
    /// A batch to write, and how many of its answers give a delivery slot back once written.
    struct Batch: Sendable {
        var answers: [Answer]
        var slots: Int
    }

    private struct State {
        var pending: [Answer] = []
        var pendingSlots = 0
        var open = 0
        var finishing = false
        var cancelled = false
        var abandoned = false
        var writer: CheckedContinuation<Batch?, Never>?
    }

    private let state = Mutex(State())

    init() {}

    /// A delivery started; its answer will be posted.
    func open() {
        state.withLock { $0.open += 1 }
    }

    /// Queues an answer; `delivery` when it ends a delivery counted by ``open()`` (which then holds a slot).
    ///
    /// - Returns: false when the outbox was abandoned: the answer is dropped and the caller gives its slot back.
    @discardableResult
    func post(_ answer: Answer, delivery: Bool) -> Bool {
        let (queued, wake) = state.withLock { state -> (Bool, (CheckedContinuation<Batch?, Never>, Batch)?) in
            if delivery { state.open -= 1 }
            guard !state.abandoned else { return (false, nil) }
            state.pending.append(answer)
            if delivery { state.pendingSlots += 1 }
            return (true, Self.takeForWriter(&state))
        }
        if let wake { wake.0.resume(returning: wake.1) }
        return queued
    }

    /// The writer is gone: drops what is queued and refuses later answers.
    ///
    /// - Returns: The slots the dropped answers held, to hand back.
    func abandon() -> Int {
        let (slots, writer) = state.withLock { state -> (Int, CheckedContinuation<Batch?, Never>?) in
            state.abandoned = true
            let slots = state.pendingSlots
            state.pending = []
            state.pendingSlots = 0
            defer { state.writer = nil }
            return (slots, state.writer)
        }
        writer?.resume(returning: nil)
        return slots
    }

    /// No more deliveries start: the writer ends after the last open one posted its answer.
    func finishWhenIdle() {
        let wake = state.withLock { state -> (CheckedContinuation<Batch?, Never>, Batch?)? in
            state.finishing = true
            guard let writer = state.writer else { return nil }
            if let batch = Self.takeForWriter(&state) { return (batch.0, batch.1) }
            guard state.open == 0 else { return nil }
            state.writer = nil
            return (writer, nil)
        }
        if let wake { wake.0.resume(returning: wake.1) }
    }

    /// The answers queued since the last call, waiting for one; nil when finished (or the task is cancelled).
    func nextBatch() async -> Batch? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (writer: CheckedContinuation<Batch?, Never>) in
                let now = state.withLock { state -> Batch?? in
                    if state.cancelled || state.abandoned { return .some(nil) }
                    if !state.pending.isEmpty {
                        let batch = Batch(answers: state.pending, slots: state.pendingSlots)
                        state.pending = []
                        state.pendingSlots = 0
                        return .some(batch)
                    }
                    if state.finishing && state.open == 0 { return .some(nil) }
                    state.writer = writer
                    return .none
                }
                if let now { writer.resume(returning: now) }
            }
        } onCancel: {
            let writer = state.withLock { state -> CheckedContinuation<Batch?, Never>? in
                state.cancelled = true
                defer { state.writer = nil }
                return state.writer
            }
            writer?.resume(returning: nil)
        }
    }

    /// Hands everything pending to a waiting writer.
    private static func takeForWriter(_ state: inout State) -> (CheckedContinuation<Batch?, Never>, Batch)? {
        guard let writer = state.writer, !state.pending.isEmpty else { return nil }
        state.writer = nil
        let batch = Batch(answers: state.pending, slots: state.pendingSlots)
        state.pending = []
        state.pendingSlots = 0
        return (writer, batch)
    }
}
