import AffinityProtocol
import EventLoopTimers
import GRPCCore
import Logging
import Metrics
import NIOCore
import Synchronization

extension PeerDeliveryService {
    /// Serves one `DeliverStream`: reads requests as they come, handles up to
    /// ``PeerServerConfiguration/maxConcurrentStreamDeliveries`` of them at once (then stops reading until one
    /// answered), and writes every answer, tagged with its request id, as soon as it is ready: one writer
    /// writes all answers ready at that moment together (``PeerAnswerOutbox``).
    ///
    /// A request refused by validation is answered at once with its failure; the stream stays open. The
    /// stream fails only when a message cannot be decoded or is above the size limit (gRPC ends the RPC), or
    /// the connection breaks. When the server shuts down, the stream sends the drain notice (request id 0,
    /// no failure) and ends once the caller finished its side and the open deliveries answered.
    ///
    /// A stream that breaks (it ends with an error: a cut connection, a cancelled RPC) tells the handler which
    /// outcomes it answered `delivered` lately: the caller may not have received those answers, and parks what it
    /// got no answer for.
    func deliverStream(
        request: RPCAsyncSequence<Affinity_Peer_V1_DeliverRequest, any Error>,
        response: RPCWriter<Affinity_Peer_V1_DeliverResponse>,
        context: ServerContext
    ) async throws {
        let delivered = PeerDeliveredAnswers(
            window: self.configuration.deliveredAnswerMemory,
            limit: self.configuration.maxDeliveredAnswersRemembered)
        do {
            try await self.serve(request, response: response, context: context, delivered: delivered)
        } catch {
            self.deliveredAnswersMayBeLost(delivered.takeRecent(), remote: context.remotePeer)
            throw error
        }
    }

    /// Tells the handler, from a task of its own (the stream's task may be cancelled), which `delivered` answers
    /// of a broken stream may not have reached the caller.
    private func deliveredAnswersMayBeLost(_ outcomes: [PeerDeliveredOutcome], remote: String) {
        guard !outcomes.isEmpty else { return }
        self.logger.notice(
            "peer delivery stream broke after delivered answers; the store remembers those outcomes as acknowledged",
            metadata: ["affinity.peer.remote": "\(remote)", "affinity.outcomes": "\(outcomes.count)"]
        )
        let handler = self.handler
        Task { await handler.deliveredAnswersMayBeLost(outcomes) }
    }

    /// The stream itself: the reader (this task), the writer and the shutdown notice.
    private func serve(
        _ request: RPCAsyncSequence<Affinity_Peer_V1_DeliverRequest, any Error>,
        response: RPCWriter<Affinity_Peer_V1_DeliverResponse>,
        context: ServerContext,
        delivered: PeerDeliveredAnswers
    ) async throws {
        let caller = Self.caller(of: context)
        let slots = PeerDeliverySlots(limit: self.configuration.maxConcurrentStreamDeliveries)
        let token = self.shutdownNotices.register()
        let replicaID = self.configuration.replicaID
        let outbox = PeerAnswerOutbox<Affinity_Peer_V1_DeliverResponse>()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                // The one writer of the stream: whatever answers are ready go out in one write. However it
                // stops, the slots of answers it will not write go back to the reader.
                defer { slots.release(outbox.abandon()) }
                while let batch = await outbox.nextBatch() {
                    defer { slots.release(batch.slots) }
                    try await response.write(contentsOf: batch.answers)
                }
            }
            group.addTask {
                if await self.shutdownNotices.waitForShutdown(token) {
                    var notice = Affinity_Peer_V1_DeliverResponse()
                    notice.replica = replicaID
                    outbox.post(notice, delivery: false)
                }
            }
            defer { self.shutdownNotices.streamEnded(token) }
            let openIDs = PeerOpenRequestIDs()
            do {
                for try await message in request {
                    let outcome: Outcome
                    switch self.accepted(message, open: openIDs, remote: context.remotePeer) {
                    case .outcome(let accepted):
                        outcome = accepted
                    case .refused(let refused):
                        outbox.post(refused, delivery: false)
                        continue
                    }
                    await slots.acquire()
                    let id = message.requestID
                    outbox.open()
                    group.addTask {
                        let answer = await self.answer(
                            to: message, outcome: outcome, from: caller, delivered: delivered)
                        openIDs.close(id)
                        if !outbox.post(answer, delivery: true) { slots.release() }
                    }
                }
                outbox.finishWhenIdle()
            } catch let error as RPCError where error.code == .invalidArgument || error.code == .resourceExhausted {
                self.metrics.received.invalid.increment()
                self.logger.debug(
                    "peer delivery stream failed",
                    metadata: ["affinity.peer.remote": "\(context.remotePeer)", "error.message": "\(error)"]
                )
                throw error
            }
        }
    }

    /// What the stream does with a request: hand its outcome to the handler, or answer it at once.
    private enum Acceptance {
        /// Handle it (its request id is open now).
        case outcome(Outcome)
        /// Refused before the handler (malformed, request id 0 or already open on this stream), with its answer.
        case refused(Affinity_Peer_V1_DeliverResponse)
    }

    /// Accepts a request for the handler, or makes the answer of one refused before it.
    private func accepted(
        _ request: Affinity_Peer_V1_DeliverRequest,
        open: PeerOpenRequestIDs,
        remote: @autoclosure () -> String
    ) -> Acceptance {
        var answer = Affinity_Peer_V1_DeliverResponse()
        answer.replica = self.configuration.replicaID
        answer.requestID = request.requestID
        if request.requestID == 0 || !open.open(request.requestID) {
            self.metrics.received.invalid.increment()
            answer.failure = .invalidArgument
            answer.failureMessage =
                request.requestID == 0
                ? "request_id must not be 0 on DeliverStream"
                : "request_id \(request.requestID) is already open on this stream"
            self.logger.debug(
                "peer stream request refused",
                metadata: ["affinity.peer.remote": "\(remote())", "error.message": "\(answer.failureMessage)"]
            )
            return .refused(answer)
        }
        switch self.validate(request, remote: remote()) {
        case .outcome(let outcome):
            return .outcome(outcome)
        case .invalid(let problem):
            answer.failure = .invalidArgument
            answer.failureMessage = problem
        }
        open.close(request.requestID)
        return .refused(answer)
    }

    /// Runs the handler for one stream request, bounded by the request's `timeout_millis`.
    private func answer(
        to request: Affinity_Peer_V1_DeliverRequest,
        outcome: Outcome,
        from caller: PeerCaller,
        delivered: PeerDeliveredAnswers
    ) async -> Affinity_Peer_V1_DeliverResponse {
        var answer = Affinity_Peer_V1_DeliverResponse()
        answer.replica = self.configuration.replicaID
        answer.requestID = request.requestID
        let timeout =
            request.timeoutMillis == 0
            ? self.configuration.defaultStreamRequestTimeout : .milliseconds(Int64(request.timeoutMillis))
        let handler = self.handler
        let legacyBroadcast = request.legacyBroadcast
        let result: ForwardedDeliveryStatus?
        do {
            result = try await withThrowingTaskGroup(of: ForwardedDeliveryStatus?.self) { group in
                group.addTask {
                    guard legacyBroadcast else { return try await handler.deliver(outcome, from: caller) }
                    try await handler.deliverToLegacyClients(outcome, from: caller)
                    return .delivered
                }
                group.addTask {
                    try await EventLoopSleeper(eventLoop: self.timers.any()).sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
        } catch {
            self.metrics.received.error.increment()
            self.logger.debug(
                "peer delivery handler failed",
                metadata: [
                    "affinity.key": "\(request.key)", "affinity.outcome": "\(request.id)", "error.message": "\(error)",
                ]
            )
            answer.failure = .handler
            answer.failureMessage = "the owner could neither deliver nor park the outcome: \(error)"
            return answer
        }
        guard let status = result else {
            self.metrics.received.error.increment()
            answer.failure = .timeout
            answer.failureMessage = "no answer within the caller's timeout of \(timeout); the delivery was cancelled"
            return answer
        }
        if case .delivered = status, !legacyBroadcast {
            delivered.record(PeerDeliveredOutcome(key: outcome.key, id: outcome.id))
        }
        self.handled(request, with: status, into: &answer)
        return answer
    }
}

/// The request ids open on one `DeliverStream` (received, not answered yet): a caller must not reuse one
/// before its answer, or two answers would carry the same id.
final class PeerOpenRequestIDs: Sendable {
    private let ids = Mutex(Set<UInt64>())

    /// Opens `id`; `false` when it is open already.
    func open(_ id: UInt64) -> Bool {
        self.ids.withLock { $0.insert(id).inserted }
    }

    /// Closes `id` (its answer is on the way).
    func close(_ id: UInt64) {
        _ = self.ids.withLock { $0.remove(id) }
    }
}

/// The outcomes one `DeliverStream` answered `delivered` lately (at most `limit`, none older than `window`), so
/// that a stream which breaks can tell its handler which answers may not have reached the caller.
final class PeerDeliveredAnswers: Sendable {
    private let answers: Mutex<RecentItems<PeerDeliveredOutcome>>

    init(window: Duration, limit: Int) {
        self.answers = Mutex(RecentItems(window: window, limit: limit))
    }

    /// Remembers that `outcome` was answered `delivered`, and forgets answers beyond the window or the limit.
    func record(_ outcome: PeerDeliveredOutcome, now: ContinuousClock.Instant = .now) {
        answers.withLock { $0.append(outcome, at: now) }
    }

    /// The answers within the window, oldest first, and forgets them.
    func takeRecent(now: ContinuousClock.Instant = .now) -> [PeerDeliveredOutcome] {
        answers.withLock { $0.removeAll(now: now) }
    }
}
