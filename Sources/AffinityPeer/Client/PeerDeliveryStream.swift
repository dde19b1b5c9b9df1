import AffinityProtocol
import EventLoopTimers
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// One long-lived `DeliverStream` to a peer, multiplexing many forwards over one HTTP/2 stream of the peer's
/// connection.
///
/// A forward (``send(_:deadline:)``) gets a request id and is queued; the stream's writer writes whatever is
/// queued in one go; answers come back in completion order and are matched by id. The caller's deadline is
/// enforced here (on a timer of a NIO event loop shared by the forwards whose deadlines fall within
/// ``deadlineGranularity``), and sent to the peer as `timeout_millis` so that the owner
/// stops waiting too. When the stream or its connection breaks, every open forward fails with the
/// classification of the error (``PeerDeliveryError/classifying(_:address:)``). A peer that shuts down
/// finishes the stream: forwards sent after its notice fail at once (``PeerDeliveryError/Code/unreachable``)
/// until the stream ended; the next one opens a new stream.
///
/// The stream is started by the first forward (``PeerConnectionPool`` runs ``run(on:)`` in its task group)
/// and restarted by the first forward after it ended.
///
/// A forward whose deadline passed is parked by the forwarding replica while the route still names the peer; if
/// the peer's `delivered` answer comes later all the same (the connection stalled without breaking), its client
/// acknowledged the outcome, and the stream hands the outcome to `lateDelivered` so that the store remembers it
/// as acknowledged (the parked copy must reach nobody).
final class PeerDeliveryStream: Sendable {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>
    typealias Waiter = CheckedContinuation<PeerDeliveryStreamAnswer, Never>
    typealias Writer = CheckedContinuation<[Affinity_Peer_V1_DeliverRequest]?, Never>
    typealias State = PeerDeliveryStreamState<Waiter, Writer>

    /// What ``send(_:deadline:startStream:)`` returns.
    enum SendResult {
        /// The peer's answer.
        case response(Affinity_Peer_V1_DeliverResponse)
        /// Not sent: this stream's connection is closing; the pool has (or makes) another one for the peer.
        case connectionRetired
    }

    /// Forwards whose deadlines fall within this much share a timer (a deadline passes at most this late).
    static let deadlineGranularity = Duration.milliseconds(10)

    let address: PeerAddress
    /// Each forward's deadline, with its key and outcome id as sent (nil for a legacy broadcast), for a late answer.
    private let deadlines:
        CoalescedDeadlines<(stream: PeerDeliveryStream, id: UInt64, sent: (key: String, id: String)?)>
    private let state = Mutex(State())
    /// The forwards whose deadline passed, for a late answer.
    private let timedOut = Mutex(PeerTimedOutForwards())
    private let lateDelivered: @Sendable (PeerDeliveredOutcome) -> Void
    private let logger: Logger
    private let metrics: PeerMetrics

    /// A stream to `address`; the forwards' deadlines share timers on one event loop of `timers`.
    /// `lateDelivered` gets each outcome the peer answered `delivered` after its forward's deadline.
    init(
        address: PeerAddress, timers: any EventLoopGroup, logger: Logger, metrics: PeerMetrics,
        lateDelivered: @escaping @Sendable (PeerDeliveredOutcome) -> Void = { _ in }
    ) {
        self.address = address
        self.deadlines = CoalescedDeadlines(eventLoop: timers.any(), granularity: Self.deadlineGranularity) {
            $0.stream.deadlinePassed($0.id, sent: $0.sent)
        }
        self.lateDelivered = lateDelivered
        self.logger = logger
        self.metrics = metrics
    }

    /// Sends one request on the stream and waits for its answer until `deadline`.
    ///
    /// - Parameters:
    ///   - request: The request (its `request_id` and `timeout_millis` are set here).
    ///   - deadline: When to give up.
    ///   - startStream: Called (once, outside the lock) when no stream is open: start ``run(on:)``.
    /// - Returns: The answer, or ``SendResult/connectionRetired``.
    /// - Throws: ``PeerDeliveryError`` (deadline, cancellation, broken stream, the peer shuts down).
    func send(
        _ request: Affinity_Peer_V1_DeliverRequest,
        deadline: ContinuousClock.Instant,
        startStream: () -> Void
    ) async throws(PeerDeliveryError) -> SendResult {
        let now = ContinuousClock.now
        let remaining = deadline - now
        var request = request
        request.timeoutMillis = Self.milliseconds(remaining)
        let action = self.state.withLock { $0.enqueue(request) }
        let id: UInt64
        switch action {
        case .connectionRetired:
            return .connectionRetired
        case .peerDraining:
            throw PeerDeliveryError(
                code: .unreachable, message: "\(self.address) is shutting down and takes no more forwards")
        case .enqueued(let enqueuedID, let start, let wake):
            id = enqueuedID
            if let wake { wake.writer.resume(returning: wake.batch) }
            if start { startStream() }
        }

        let sent = request.legacyBroadcast ? nil : (key: request.key, id: request.id)
        let deadline = self.deadlines.register((self, id, sent), in: remaining)
        let answer = await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: Waiter) in
                if let answer = self.state.withLock({ $0.attach(id, waiter: waiter) }) {
                    waiter.resume(returning: answer)
                }
            }
        } onCancel: {
            self.complete(
                id,
                with: .failure(
                    PeerDeliveryError(code: .shutDown, message: "the forward to \(self.address) was cancelled"))
            )
        }
        self.deadlines.cancel(deadline)
        switch answer {
        case .response(let response):
            return .response(response)
        case .failure(let error):
            throw error
        }
    }

    /// Runs one stream on `client` until it ends (the peer closed it, the connection broke, or
    /// ``retire()`` finished it), then fails what is still open.
    func run(on client: Client) async {
        var options = CallOptions.defaults
        options.timeout = nil
        options.waitForReady = false
        let ending: State.Answer
        self.metrics.streamsOpened.increment()
        do {
            try await Affinity_Peer_V1_PeerDelivery.Client(wrapping: client).deliverStream(
                options: options,
                requestProducer: { writer in
                    while let batch = await self.nextBatch() {
                        try await writer.write(contentsOf: batch)
                    }
                },
                onResponse: { response in
                    for try await answer in response.messages {
                        if answer.requestID == 0 && answer.failure == .none {
                            // The peer is shutting down: send no more, its open requests are still answered.
                            self.state.withLock { $0.peerDraining() }?.resume(returning: nil)
                        } else {
                            self.complete(answer.requestID, with: .response(answer))
                        }
                    }
                }
            )
            ending = .failure(
                PeerDeliveryError(code: .unreachable, message: "\(self.address) closed the delivery stream"))
        } catch {
            let classified = PeerDeliveryError.classifying(error, address: self.address)
            self.logger.debug(
                "peer delivery stream failed",
                metadata: [
                    "affinity.peer.address": "\(self.address)", "error.code": "\(classified.code.rawValue)",
                    "error.message": "\(classified.message)",
                ]
            )
            ending = .failure(classified)
        }
        self.end(with: ending)
    }

    /// Fails every open request with `error` without running a stream (the pool could not start one).
    func fail(_ error: PeerDeliveryError) {
        self.end(with: .failure(error))
    }

    private func end(with answer: State.Answer) {
        let (waiters, writer) = self.state.withLock { $0.streamEnded(with: answer) }
        writer?.resume(returning: nil)
        for waiter in waiters {
            waiter.resume(returning: answer)
        }
    }

    /// Finishes the stream once the requests already queued are written and answered; later sends are
    /// refused with ``SendResult/connectionRetired``. Called when the connection is being closed.
    ///
    /// - Returns: Whether a stream was open (it ends by itself once its answers are in).
    @discardableResult
    func retire() -> Bool {
        let (writer, open) = self.state.withLock { $0.retire() }
        writer?.resume(returning: nil)
        return open
    }

    /// Whether a stream is starting or open (for tests and logs).
    var isOpen: Bool {
        self.state.withLock { $0.isStreamOpen }
    }

    private func nextBatch() async -> [Affinity_Peer_V1_DeliverRequest]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (writer: Writer) in
                let action = self.state.withLock { $0.takeBatch(writer: writer) }
                switch action {
                case .write(let batch): writer.resume(returning: batch)
                case .finish: writer.resume(returning: nil)
                case .wait: break
                }
            }
        } onCancel: {
            self.state.withLock { $0.cancelWriter() }?.resume(returning: nil)
        }
    }

    /// The deadline of request `id` passed: fails it, and remembers its outcome for a late answer.
    private func deadlinePassed(_ id: UInt64, sent: (key: String, id: String)?) {
        let outcome = sent.flatMap { sent in
            ProcessInstanceKey(sent.key).map { PeerDeliveredOutcome(key: $0, id: sent.id) }
        }
        // remembered before the request fails, so that an answer arriving between the two finds it
        if let outcome { self.timedOut.withLock { $0.remember(id, outcome) } }
        let failure = PeerDeliveryError(
            code: .deadlineExceeded, message: "\(self.address) did not answer before the deadline")
        if !self.complete(id, with: .failure(failure)), outcome != nil {
            // answered meanwhile: nothing is late
            _ = self.timedOut.withLock { $0.take(id) }
        }
    }

    /// Completes request `id`; returns whether it was still open.
    @discardableResult
    private func complete(_ id: UInt64, with answer: State.Answer) -> Bool {
        let action = self.state.withLock { $0.complete(id, with: answer) }
        switch action {
        case .resume(let waiter, let answer):
            waiter.resume(returning: answer)
        case .stored:
            break
        case .unknown:
            guard case .response(let response) = answer else { return false }
            let late = self.timedOut.withLock { $0.take(id) }
            if let late, response.failure == .none, response.status == .delivered {
                self.logger.notice(
                    "the peer answered delivered after the forward's deadline; the store remembers it as acknowledged",
                    metadata: [
                        "affinity.peer.address": "\(self.address)", "affinity.key": "\(late.key)",
                        "affinity.outcome": "\(late.id)",
                    ]
                )
                self.lateDelivered(late)
            } else {
                // A late answer that delivered nothing, or a peer answering an id it never got.
                self.logger.trace(
                    "answer for a request that is no longer open dropped",
                    metadata: ["affinity.peer.address": "\(self.address)", "affinity.peer.request": "\(id)"]
                )
            }
            return false
        }
        return true
    }

    private static func milliseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 1 }
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return UInt32(clamping: max(millis, 1))
    }
}

/// The forwards of one stream whose deadline passed, by request id, for a late answer: the last ``limit`` of
/// them, none older than ``lifetime`` (a late answer comes within seconds, or the connection breaks).
struct PeerTimedOutForwards {
    static let limit = 1024
    static let lifetime = Duration.seconds(60)

    private var forwards: [UInt64: (outcome: PeerDeliveredOutcome, at: ContinuousClock.Instant)] = [:]
    /// Every remembered id in the order its deadline passed (taken ones included, until they are forgotten).
    private var order = RecentItems<UInt64>(window: Self.lifetime, limit: Self.limit)

    /// Remembers the outcome of request `id`, forgetting the oldest beyond the bounds.
    mutating func remember(_ id: UInt64, _ outcome: PeerDeliveredOutcome, now: ContinuousClock.Instant = .now) {
        forwards[id] = (outcome, now)
        order.appendKeepingOldest(id, at: now)
        while let forgotten = order.forgetOldest(now: now) {
            if forwards[forgotten.item]?.at == forgotten.at { forwards[forgotten.item] = nil }
        }
    }

    /// The outcome of request `id`, if its deadline passed lately; forgets it.
    mutating func take(_ id: UInt64, now: ContinuousClock.Instant = .now) -> PeerDeliveredOutcome? {
        guard let forward = forwards.removeValue(forKey: id), order.isRecent(forward.at, now: now) else { return nil }
        return forward.outcome
    }

    /// How many entries the memory holds (its order's, which include the outcomes'): at most ``limit``.
    var storedEntries: Int { order.count }
}
