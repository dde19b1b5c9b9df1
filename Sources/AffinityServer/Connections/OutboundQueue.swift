/// The outbound side of one connection, without I/O: an ordered queue of text frames bounded in
/// bytes, then at most one close. A writer takes items with ``next()``; producers add frames with
/// ``enqueue(_:)``. A frame that would push the queued bytes over the budget turns the queue into
/// a close with 1008 "slow consumer" and drops what is queued.
struct OutboundQueue {
    /// A close to send after the queued frames.
    struct Close: Equatable {
        /// WebSocket close code, e.g. 1001 (going away) or 1008 (policy violation).
        var code: UInt16
        /// Close reason.
        var reason: String
    }

    enum Item: Equatable {
        case frame([UInt8])
        case close(Close)
    }

    enum EnqueueResult: Equatable {
        /// Queued; `wakeWriter` when the writer is waiting for work.
        case enqueued(wakeWriter: Bool)
        /// Over budget: the queue now only holds the slow-consumer close.
        case overBudget(wakeWriter: Bool)
        /// The queue is closing or closed; the frame was dropped.
        case closed
    }

    enum NextResult: Equatable {
        case item(Item)
        /// Nothing queued; the writer should wait.
        case wait
        /// The close was taken, or the queue was finished: the writer is done.
        case finished
    }

    static let slowConsumer = Close(code: 1008, reason: "slow consumer")

    private var frames: [[UInt8]] = []
    private var head = 0
    private var pendingClose: Close?
    private var finished = false
    private(set) var queuedBytes = 0
    private(set) var writerWaiting = false
    let budget: Int

    init(budget: Int) {
        self.budget = budget
    }

    /// True once a close is pending or the queue is finished.
    var isClosing: Bool { pendingClose != nil || finished }

    mutating func enqueue(_ frame: [UInt8]) -> EnqueueResult {
        guard !isClosing else { return .closed }
        if queuedBytes + frame.count > budget {
            frames.removeAll()
            head = 0
            queuedBytes = 0
            pendingClose = Self.slowConsumer
            return .overBudget(wakeWriter: takeWaiting())
        }
        frames.append(frame)
        queuedBytes += frame.count
        return .enqueued(wakeWriter: takeWaiting())
    }

    /// Queues a close behind the frames already queued (`dropQueued` discards them first).
    /// Returns whether the writer must be woken; ignored when already closing.
    mutating func close(_ close: Close, dropQueued: Bool = false) -> Bool {
        guard !isClosing else { return false }
        if dropQueued {
            frames.removeAll()
            head = 0
            queuedBytes = 0
        }
        pendingClose = close
        return takeWaiting()
    }

    /// Ends the queue without a close (the peer is gone). Returns whether the writer must be woken.
    mutating func finish() -> Bool {
        guard !finished else { return false }
        finished = true
        frames.removeAll()
        head = 0
        queuedBytes = 0
        return takeWaiting()
    }

    mutating func next() -> NextResult {
        if head < frames.count {
            let frame = frames[head]
            head += 1
            queuedBytes -= frame.count
            if head == frames.count {
                frames.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 64 && head * 2 > frames.count {
                frames.removeFirst(head)
                head = 0
            }
            return .item(.frame(frame))
        }
        if let close = pendingClose {
            pendingClose = nil
            finished = true
            return .item(.close(close))
        }
        if finished { return .finished }
        writerWaiting = true
        return .wait
    }

    /// The writer gave up waiting (cancelled).
    mutating func stopWaiting() {
        writerWaiting = false
    }

    private mutating func takeWaiting() -> Bool {
        defer { writerWaiting = false }
        return writerWaiting
    }
}
