/// The outbound side of one connection, without I/O: an ordered queue of text frames bounded in
/// bytes, then at most one close.
///
/// Producers add frames with ``enqueue(_:)`` from any thread; the first frame after a flush asks
/// for one (`scheduleFlush`), and the flush, on the channel's event loop, takes everything queued
/// with ``takeBatch()`` and writes it. Bytes count against the budget from ``enqueue(_:)`` until
/// their write completed (``written(_:)``), so a peer that does not read fills the budget even
/// though the frames left the queue. A frame that would go over the budget turns the queue into a
/// close with 1008 "slow consumer" and drops what is still queued.
struct OutboundQueue {
    /// A close to send after the queued frames.
    struct Close: Equatable {
        /// WebSocket close code, e.g. 1001 (going away) or 1008 (policy violation).
        var code: UInt16
        /// Close reason.
        var reason: String
    }

    /// What a flush writes, in order: the frames, then the close if there is one.
    struct Batch: Equatable {
        var frames: [[UInt8]]
        var close: Close?
        /// The bytes of `frames`; report them with ``written(_:)`` once their write completed.
        var bytes: Int
    }

    enum EnqueueResult: Equatable {
        /// Queued; `scheduleFlush` when the caller must schedule a flush.
        case enqueued(scheduleFlush: Bool)
        /// Over budget: the queue now only holds the slow-consumer close.
        case overBudget(scheduleFlush: Bool)
        /// The queue is closing or closed; the frame was dropped.
        case closed
    }

    static let slowConsumer = Close(code: 1008, reason: "slow consumer")

    private var frames: [[UInt8]] = []
    private var pendingClose: Close?
    private var closeTaken = false
    private var finished = false
    private var flushScheduled = false
    /// Bytes of the frames queued and not yet taken by a flush.
    private(set) var queuedBytes = 0
    /// Bytes taken by a flush whose write has not completed yet.
    private(set) var unwrittenBytes = 0
    let budget: Int

    init(budget: Int) {
        self.budget = budget
    }

    /// True once a close is pending or sent, or the queue is finished.
    var isClosing: Bool { pendingClose != nil || closeTaken || finished }

    mutating func enqueue(_ frame: [UInt8]) -> EnqueueResult {
        guard !isClosing else { return .closed }
        if queuedBytes + unwrittenBytes + frame.count > budget {
            frames = []
            queuedBytes = 0
            pendingClose = Self.slowConsumer
            return .overBudget(scheduleFlush: requestFlush())
        }
        frames.append(frame)
        queuedBytes += frame.count
        return .enqueued(scheduleFlush: requestFlush())
    }

    /// Queues a close behind the frames already queued (`dropQueued` discards them first).
    /// Returns whether the caller must schedule a flush; ignored (false) when already closing.
    mutating func close(_ close: Close, dropQueued: Bool = false) -> Bool {
        guard !isClosing else { return false }
        if dropQueued {
            frames = []
            queuedBytes = 0
        }
        pendingClose = close
        return requestFlush()
    }

    /// Ends the queue without a close (the peer is gone, or the close was written elsewhere):
    /// what is queued is dropped, nothing more is written.
    mutating func finish() {
        finished = true
        frames = []
        queuedBytes = 0
        pendingClose = nil
    }

    /// Everything queued, for the flush; nil when there is nothing to write.
    mutating func takeBatch() -> Batch? {
        flushScheduled = false
        guard !finished, !frames.isEmpty || pendingClose != nil else { return nil }
        let batch = Batch(frames: frames, close: pendingClose, bytes: queuedBytes)
        if pendingClose != nil {
            pendingClose = nil
            closeTaken = true
        }
        frames = []
        unwrittenBytes += queuedBytes
        queuedBytes = 0
        return batch
    }

    /// The write of a batch's frames completed (or failed): their bytes leave the budget.
    mutating func written(_ bytes: Int) {
        unwrittenBytes -= bytes
    }

    private mutating func requestFlush() -> Bool {
        guard !flushScheduled else { return false }
        flushScheduled = true
        return true
    }
}
