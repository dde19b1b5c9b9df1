/// The bookkeeping of one peer's `DeliverStream`, without I/O: request ids, the requests waiting to be
/// written, the callers waiting for their answers, and whether a stream is open, closed, finishing because
/// the peer shuts down, or retired with its connection.
///
/// ``PeerDeliveryStream`` feeds it events under a lock and performs the returned actions (resume a caller,
/// wake the stream's writer, start a stream) outside the lock. `Waiter` is a caller's continuation and
/// `Writer` the stream writer's continuation in production, plain values in the unit tests.
///
/// A request's life: ``enqueue(_:now:)`` gives it an id and queues it; the writer takes it with
/// ``takeBatch(writer:)``; the first of its answer (``complete(_:with:)``), its deadline, its caller's
/// cancellation or the end of the stream (``streamEnded(with:)``) completes it; the caller
/// collects the result with ``attach(_:waiter:)``, before or after the completion.
struct PeerDeliveryStreamState<Waiter, Writer> {
    typealias Answer = PeerDeliveryStreamAnswer

    /// What ``enqueue(_:)`` decided.
    enum EnqueueAction {
        /// Not sent: the connection is closing (the pool replaced or dropped it): look the peer's connection
        /// up again.
        case connectionRetired
        /// Not sent: the peer shuts down and finishes this stream; its open requests are still answered.
        case peerDraining
        /// The request is queued under `id`. `startStream`: no stream is open, start one (which then takes
        /// the queue). `wake`: the idle writer to resume with `batch`.
        case enqueued(id: UInt64, startStream: Bool, wake: (writer: Writer, batch: [Affinity_Peer_V1_DeliverRequest])?)
    }

    /// What ``takeBatch(writer:)`` decided.
    enum BatchAction {
        /// Write these requests (in one go).
        case write([Affinity_Peer_V1_DeliverRequest])
        /// Nothing queued: the writer was stored and is resumed by a later enqueue, close or stream end.
        case wait
        /// The stream is closing or ended: finish the request side.
        case finish
    }

    /// What ``complete(_:with:)`` decided.
    enum CompleteAction {
        /// Resume this caller with the answer.
        case resume(Waiter, Answer)
        /// The caller has not attached yet; the answer is kept for it.
        case stored
        /// No open request has this id (answered already, timed out, or never sent).
        case unknown
    }

    private enum Phase {
        /// No stream; the next request starts one.
        case closed
        /// A stream is starting or open.
        case open
        /// The stream was asked to finish (its connection is closing); later requests are refused.
        case closing
        /// The peer is shutting down and asked to finish the stream; later requests are refused until it
        /// ended, then a new stream is tried.
        case draining
        /// The connection is retired for good: every later request is refused.
        case retired
    }

    private enum Entry {
        case registered
        case waiting(Waiter)
        case completed(Answer)
    }

    private var phase: Phase = .closed
    private var nextID: UInt64 = 1
    private var entries: [UInt64: Entry] = [:]
    private var queue: [Affinity_Peer_V1_DeliverRequest] = []
    private var idleWriter: Writer?
    /// The current stream's writer task was cancelled: it must not wait any more.
    private var writerCancelled = false

    /// The number of requests that were sent or queued and have no answer collected yet.
    var openRequestCount: Int { self.entries.count }

    /// Whether a stream is starting or open.
    var isStreamOpen: Bool {
        if case .open = self.phase { return true }
        return false
    }

    /// Gives `request` an id and queues it on the stream, or says why it cannot be sent on it.
    mutating func enqueue(_ request: Affinity_Peer_V1_DeliverRequest) -> EnqueueAction {
        var startStream = false
        switch self.phase {
        case .open:
            break
        case .closed:
            self.phase = .open
            self.writerCancelled = false
            startStream = true
        case .draining:
            return .peerDraining
        case .closing, .retired:
            return .connectionRetired
        }
        let id = self.nextID
        self.nextID &+= 1
        var request = request
        request.requestID = id
        self.entries[id] = .registered
        self.queue.append(request)
        var wake: (writer: Writer, batch: [Affinity_Peer_V1_DeliverRequest])?
        if let writer = self.idleWriter {
            self.idleWriter = nil
            wake = (writer, self.queue)
            self.queue.removeAll(keepingCapacity: true)
        }
        return .enqueued(id: id, startStream: startStream, wake: wake)
    }

    /// The writer asks for the next requests to write.
    mutating func takeBatch(writer: Writer) -> BatchAction {
        if !self.queue.isEmpty {
            let batch = self.queue
            self.queue.removeAll(keepingCapacity: true)
            return .write(batch)
        }
        switch self.phase {
        case .open where !self.writerCancelled:
            self.idleWriter = writer
            return .wait
        case .open:
            return .finish
        case .closed, .closing, .draining, .retired:
            return .finish
        }
    }

    /// The writer's task was cancelled (the stream is ending): returns the waiting writer, to resume with
    /// "finish"; a writer that did not wait yet gets "finish" from ``takeBatch(writer:)``.
    mutating func cancelWriter() -> Writer? {
        self.writerCancelled = true
        return self.releaseWriter()
    }

    /// Takes the waiting writer, if any, out of the state.
    mutating func releaseWriter() -> Writer? {
        defer { self.idleWriter = nil }
        return self.idleWriter
    }

    /// The caller of request `id` waits for its answer: returns the answer if it is there already (the entry
    /// is then gone), else keeps `waiter` for ``complete(_:with:)``.
    mutating func attach(_ id: UInt64, waiter: Waiter) -> Answer? {
        switch self.entries[id] {
        case .completed(let answer):
            self.entries[id] = nil
            return answer
        case .registered:
            self.entries[id] = .waiting(waiter)
            return nil
        case .waiting, nil:
            // A second attach, or an id never handed out: a programming error; answer rather than hang.
            return .failure(PeerDeliveryError(code: .failed, message: "request \(id) is not open on the stream"))
        }
    }

    /// Request `id` is answered (by the peer, its deadline, its caller's cancellation). The first completion
    /// wins; later ones are `unknown`.
    mutating func complete(_ id: UInt64, with answer: Answer) -> CompleteAction {
        switch self.entries[id] {
        case .registered:
            self.entries[id] = .completed(answer)
            return .stored
        case .waiting(let waiter):
            self.entries[id] = nil
            return .resume(waiter, answer)
        case .completed, nil:
            return .unknown
        }
    }

    /// The stream ended: every open request completes with `answer`; the next request starts a new stream,
    /// unless the stream was retired. Returns the callers and the idle writer to resume.
    mutating func streamEnded(with answer: Answer) -> (waiters: [Waiter], writer: Writer?) {
        switch self.phase {
        case .retired, .closing:
            self.phase = .retired
        case .open, .closed, .draining:
            self.phase = .closed
        }
        self.queue.removeAll()
        var waiters: [Waiter] = []
        for (id, entry) in self.entries {
            switch entry {
            case .registered:
                self.entries[id] = .completed(answer)
            case .waiting(let waiter):
                waiters.append(waiter)
                self.entries[id] = nil
            case .completed:
                break
            }
        }
        return (waiters, self.releaseWriter())
    }

    /// The connection is closing (TLS renewal, shutdown): requests already queued or sent are still written
    /// and answered, later ones are refused. Returns the idle writer, to resume with "finish", and
    /// whether a stream is still open (else nothing will end it: it is retired now).
    mutating func retire() -> (writer: Writer?, streamOpen: Bool) {
        switch self.phase {
        case .open, .draining:
            self.phase = .closing
            return (self.releaseWriter(), true)
        case .closing:
            return (nil, true)
        case .closed, .retired:
            self.phase = .retired
            return (nil, false)
        }
    }

    /// The peer announced that it is shutting down (an answer with request id 0): requests already queued or
    /// sent are still written and answered, later ones are refused until the stream ended. Returns the idle
    /// writer, to resume with "finish".
    mutating func peerDraining() -> Writer? {
        guard case .open = self.phase else { return nil }
        self.phase = .draining
        return self.releaseWriter()
    }
}

/// What a forward on a `DeliverStream` gets back (``PeerDeliveryStreamState``).
enum PeerDeliveryStreamAnswer: Sendable {
    /// The peer's answer.
    case response(Affinity_Peer_V1_DeliverResponse)
    /// The request failed (deadline, cancellation, broken stream) with this classification.
    case failure(PeerDeliveryError)
}
