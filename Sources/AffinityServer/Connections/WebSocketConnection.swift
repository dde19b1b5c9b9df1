import AffinityProtocol
import NIOCore
import NIOWebSocket
import Synchronization

/// The state of one WebSocket connection shared between its session, its channel handler and
/// deliveries from other connections: role, subscriptions, outcomes in flight and the bounded
/// outbound queue.
///
/// Frames are written to the channel directly, in the order they were queued: the first frame
/// after a flush schedules one flush on the channel's event loop, which writes everything queued
/// by then. No task waits for outbound work.
final class WebSocketConnection: OutcomeSubscriber {
    enum HelloResult {
        case welcome
        case alreadyHello
        case forbidden
    }

    private struct State {
        var queue: OutboundQueue
        var role: PeerRole?
        var clientID: String?
        var subscriptions: SubscriptionTable
        /// Outcomes sent and not acknowledged yet, by id. Kept when their key is unsubscribed: an ack that
        /// arrives after the unsubscribe still counts.
        var inFlight: [String: [InFlightOutcome]] = [:]
        var consecutiveErrors = 0
        var closed = false
        /// `drain` was sent while the connection stays open (workers, see ``announceDrain()``).
        var drainAnnounced = false
    }

    let connectionID = ConnectionID.next()
    let grantedRoles: Set<PeerRole>
    private let state: Mutex<State>
    private let channel: any Channel
    private let slowConsumer: @Sendable () -> Void
    private let inbox: InboundMessageQueue
    /// A connection of the Node package's protocol, which knows no `drain` message.
    let legacy: Bool
    /// Outcomes sent and not acknowledged that this connection may hold; past that, live outcomes are refused
    /// (they park) until it acks, so a client that never acks cannot grow the replica's memory.
    private let maxUnacknowledged: Int

    /// - Parameters:
    ///   - channel: the upgraded channel; frames are written to it (see ``AffinityWebSocketHandler``).
    ///   - inbox: the session's queue; a read of parked outcomes is queued there (see ``parkedWaiting(for:)``).
    ///   - onSlowConsumer: called once when the outbound budget is exceeded.
    init(
        grantedRoles: Set<PeerRole>, channel: any Channel, inbox: InboundMessageQueue, outboundBudget: Int,
        maxSubscriptions: Int, maxUnacknowledged: Int = 10_000, legacy: Bool = false,
        onSlowConsumer: @escaping @Sendable () -> Void
    ) {
        self.maxUnacknowledged = maxUnacknowledged
        self.legacy = legacy
        self.grantedRoles = grantedRoles
        self.channel = channel
        self.inbox = inbox
        self.slowConsumer = onSlowConsumer
        self.state = Mutex(
            State(
                queue: OutboundQueue(budget: outboundBudget), subscriptions: SubscriptionTable(limit: maxSubscriptions))
        )
    }

    var role: PeerRole? { state.withLock { $0.role } }
    var clientID: String? { state.withLock { $0.clientID } }

    func hello(role: PeerRole, clientID: String) -> HelloResult {
        guard grantedRoles.contains(role) else { return .forbidden }
        return state.withLock { state in
            guard state.role == nil else { return .alreadyHello }
            state.role = role
            state.clientID = clientID
            return .welcome
        }
    }

    // MARK: - Outbound

    /// Queues a message. Returns false if it was dropped (closing or over budget).
    @discardableResult
    func send(_ message: AffinityMessage) -> Bool {
        send(frame: message.encoded())
    }

    @discardableResult
    func send(frame: [UInt8]) -> Bool {
        let result = state.withLock { $0.queue.enqueue(frame) }
        switch result {
        case .enqueued(let flush):
            if flush { scheduleFlush() }
            return true
        case .overBudget(let flush):
            if flush { scheduleFlush() }
            slowConsumer()
            return false
        case .closed: return false
        }
    }

    /// Queues a close after the frames already queued (or instead of them when `dropQueued`).
    func close(code: UInt16, reason: String, dropQueued: Bool = false) {
        let flush = state.withLock { $0.queue.close(.init(code: code, reason: reason), dropQueued: dropQueued) }
        if flush { scheduleFlush() }
    }

    /// Sends `drain`, then closes with 1001 (only the close when ``announceDrain()`` already told the peer).
    func drain() {
        if !legacy && !state.withLock({ $0.drainAnnounced }) { send(.drain) }
        close(code: 1001, reason: "draining")
    }

    /// Sends `drain` and keeps the connection open: a worker stops sending outcomes here, and the
    /// answers to those it already sent still reach it before ``drain()`` closes the connection.
    func announceDrain() {
        let first = state.withLock { state in
            defer { state.drainAnnounced = true }
            return !state.drainAnnounced
        }
        if first { send(.drain) }
    }

    /// Ends the outbound side without queueing a close (the peer is gone, or the channel handler
    /// wrote the close itself): what is queued is dropped and nothing more is written.
    func finishOutbound() {
        state.withLock { $0.queue.finish() }
    }

    /// Closes the channel (the session ended); a no-op when it is closed already.
    func closeChannel() {
        channel.close(promise: nil)
    }

    private func scheduleFlush() {
        channel.eventLoop.execute { self.flush() }
    }

    /// Writes everything queued (on the event loop): the batch's text frames encoded into one buffer,
    /// one write, whose completion gives the batch's bytes back to the budget; then the close, if one
    /// is queued, as a ``WebSocketCloseRequest`` to the channel's handler.
    private func flush() {
        guard let batch = state.withLock({ $0.queue.takeBatch() }) else { return }
        let pipeline = channel.pipeline.syncOperations
        if !batch.frames.isEmpty {
            var size = 0
            for bytes in batch.frames {
                size += WebSocketFrameWriter.headerSize(payloadLength: bytes.count) + bytes.count
            }
            var frames = channel.allocator.buffer(capacity: size)
            for bytes in batch.frames {
                WebSocketFrameWriter.writeHeader(opcode: .text, payloadLength: bytes.count, to: &frames)
                frames.writeBytes(bytes)
            }
            let written = channel.eventLoop.makePromise(of: Void.self)
            let byteCount = batch.bytes
            written.futureResult.whenComplete { _ in
                self.state.withLock { $0.queue.written(byteCount) }
            }
            pipeline.write(NIOAny(frames), promise: written)
        }
        if let close = batch.close {
            pipeline.triggerUserOutboundEvent(
                WebSocketCloseRequest(code: close.code, reason: close.reason), promise: nil)
        }
        pipeline.flush()
    }

    // MARK: - Subscriptions

    func beginSubscribe(_ key: ProcessInstanceKey) -> SubscriptionTable.BeginResult {
        state.withLock { state in
            state.closed ? .limitReached : state.subscriptions.begin(key)
        }
    }

    /// Hands over a page of parked outcomes of `key` (after `subscribed` when `confirm`): queues the frames and
    /// remembers them in flight. Returns what the session must do next.
    func handOver(_ page: ParkedPage, of key: ProcessInstanceKey, confirm: Bool) -> SubscriptionTable.PageResult {
        let (result, flush, overBudget) = state.withLock { state -> (SubscriptionTable.PageResult, Bool, Bool) in
            let result = state.subscriptions.pageRead(
                key, ids: page.outcomes.map(\.id), hasMore: page.hasMore)
            guard result != .unsubscribed else { return (result, false, false) }
            var flush = false
            var overBudget = false
            func enqueue(_ frame: [UInt8]) -> Bool {
                switch state.queue.enqueue(frame) {
                case .enqueued(let scheduleFlush):
                    flush = flush || scheduleFlush
                    return true
                case .overBudget(let scheduleFlush):
                    flush = flush || scheduleFlush
                    overBudget = true
                    return false
                case .closed:
                    return false
                }
            }
            if confirm { _ = enqueue(AffinityMessage.subscribed(key: key).encoded()) }
            for outcome in page.outcomes where enqueue(outcome.frame) {
                state.inFlight[outcome.id, default: []].append(.parked(ParkedOutcomeReference(outcome)))
            }
            return (result, flush, overBudget)
        }
        if flush { scheduleFlush() }
        if overBudget { slowConsumer() }
        return result
    }

    /// A read of `key`'s parked outcomes failed: the key takes live outcomes again until the next hint.
    func readFailed(_ key: ProcessInstanceKey) {
        state.withLock { $0.subscriptions.readFailed(key) }
    }

    /// Outcomes are parked for `key` that this connection may not have read: queues a read in the session
    /// (unless one runs or follows anyway).
    func parkedWaiting(for key: ProcessInstanceKey) {
        let readNow = state.withLock { state in
            !state.closed && state.subscriptions.parkedWaiting(key)
        }
        if readNow { inbox.push(.readParked(key)) }
    }

    /// The acknowledged outcome `id` of `key` was removed from the store; returns true when the next page of
    /// the key's backlog must be read now.
    func acknowledgedParked(_ key: ProcessInstanceKey, id: String) -> Bool {
        state.withLock { $0.subscriptions.acknowledged(key, id: id) }
    }

    /// Removes a subscription; returns nil if the key was not subscribed, else the live outcomes of the key
    /// sent and not acked yet (their deliveries must not wait for a subscriber that has left; they stay in
    /// flight, so that a late ack still counts).
    func unsubscribe(_ key: ProcessInstanceKey) -> [InFlightOutcome]? {
        state.withLock { state -> [InFlightOutcome]? in
            guard state.subscriptions.remove(key) else { return nil }
            var released: [InFlightOutcome] = []
            for entries in state.inFlight.values {
                for entry in entries where entry.key == key {
                    if case .live = entry { released.append(entry) }
                }
            }
            return released
        }
    }

    func offer(_ outcome: Outcome, as inFlight: InFlightOutcome) -> Bool {
        let (accepted, flush, overBudget) = state.withLock { state -> (Bool, Bool, Bool) in
            guard !state.closed, state.inFlight.count < maxUnacknowledged else { return (false, false, false) }
            switch state.subscriptions.offer(for: outcome.key) {
            case .notSubscribed, .refused:
                return (false, false, false)
            case .send:
                switch state.queue.enqueue(outcome.frame) {
                case .enqueued(let flush):
                    state.inFlight[outcome.id, default: []].append(inFlight)
                    return (true, flush, false)
                case .overBudget(let flush):
                    return (false, flush, true)
                case .closed:
                    return (false, false, false)
                }
            }
        }
        if flush { scheduleFlush() }
        if overBudget { slowConsumer() }
        return accepted
    }

    /// Takes the in-flight entries for an acked outcome id (empty if none), whatever became of their
    /// subscription since.
    func takeInFlight(id: String) -> [InFlightOutcome] {
        state.withLock { state in
            state.inFlight.removeValue(forKey: id) ?? []
        }
    }

    /// Takes the in-flight entries for an acked outcome id when all of them are live deliveries (an ack that needs
    /// no store; empty if none); nil, taking nothing, when one is a parked outcome.
    func takeLiveInFlight(id: String) -> [PendingDelivery]? {
        state.withLock { state in
            guard let entries = state.inFlight[id] else { return [] }
            var deliveries: [PendingDelivery] = []
            deliveries.reserveCapacity(entries.count)
            for entry in entries {
                guard case .live(let delivery) = entry else { return nil }
                deliveries.append(delivery)
            }
            state.inFlight[id] = nil
            return deliveries
        }
    }

    /// Marks the connection closed and returns everything that must be cleaned up: the subscribed keys and the
    /// outcomes in flight.
    func closeAndTakeState() -> (keys: [ProcessInstanceKey], inFlight: [InFlightOutcome]) {
        state.withLock { state in
            state.closed = true
            let keys = state.subscriptions.removeAll()
            let inFlight = state.inFlight.values.flatMap { $0 }
            state.inFlight.removeAll()
            return (keys, inFlight)
        }
    }

    // MARK: - Violations

    /// Counts a protocol error; returns the number of errors in a row.
    func recordError() -> Int {
        state.withLock { state in
            state.consecutiveErrors += 1
            return state.consecutiveErrors
        }
    }

    func recordValidMessage() {
        state.withLock { $0.consecutiveErrors = 0 }
    }
}
