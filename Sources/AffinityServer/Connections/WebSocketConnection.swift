import AffinityProtocol
import Synchronization

/// The state of one WebSocket connection shared between its reader, its writer and deliveries
/// from other connections: role, subscriptions, outcomes in flight and the bounded outbound queue.
final class WebSocketConnection: OutcomeSubscriber {
    enum HelloResult {
        case welcome
        case alreadyHello
        case forbidden
    }

    private struct State {
        var queue: OutboundQueue
        var writer: CheckedContinuation<Void, Never>?
        var role: PeerRole?
        var clientID: String?
        var subscriptions: SubscriptionTable<HeldOutcome>
        var inFlight: [String: [InFlightOutcome]] = [:]
        var consecutiveErrors = 0
        var closed = false
        /// `drain` was sent while the connection stays open (workers, see ``announceDrain()``).
        var drainAnnounced = false
    }

    /// An outcome held back while its key's subscription is loading.
    struct HeldOutcome: Sendable {
        var outcome: Outcome
        var inFlight: InFlightOutcome
    }

    let connectionID = ConnectionID.next()
    let grantedRoles: Set<PeerRole>
    private let state: Mutex<State>
    private let slowConsumer: @Sendable () -> Void
    private let onCloseQueued: @Sendable () -> Void

    /// - Parameters:
    ///   - onCloseQueued: called whenever a close is queued, so the session can drop a peer that
    ///     does not answer the close in time.
    ///   - onSlowConsumer: called once when the outbound budget is exceeded.
    init(
        grantedRoles: Set<PeerRole>, outboundBudget: Int, maxSubscriptions: Int,
        onCloseQueued: @escaping @Sendable () -> Void, onSlowConsumer: @escaping @Sendable () -> Void
    ) {
        self.grantedRoles = grantedRoles
        self.onCloseQueued = onCloseQueued
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

    /// Queues a message for the writer. Returns false if it was dropped (closing or over budget).
    @discardableResult
    func send(_ message: AffinityMessage) -> Bool {
        send(frame: message.encoded())
    }

    @discardableResult
    func send(frame: [UInt8]) -> Bool {
        let (result, writer) = state.withLock { state in
            let result = state.queue.enqueue(frame)
            return (result, Self.takeWriter(result, from: &state))
        }
        writer?.resume()
        switch result {
        case .enqueued: return true
        case .overBudget:
            onSlowConsumer()
            return false
        case .closed: return false
        }
    }

    /// Queues a close after the frames already queued (or instead of them when `dropQueued`).
    func close(code: UInt16, reason: String, dropQueued: Bool = false) {
        let (accepted, writer) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            let wake = state.queue.close(.init(code: code, reason: reason), dropQueued: dropQueued)
            let accepted = state.queue.isClosing
            guard wake else { return (accepted, nil) }
            defer { state.writer = nil }
            return (accepted, state.writer)
        }
        writer?.resume()
        if accepted { onCloseQueued() }
    }

    private func onSlowConsumer() {
        slowConsumer()
        onCloseQueued()
    }

    /// Sends `drain`, then closes with 1001 (only the close when ``announceDrain()`` already told the peer).
    func drain() {
        if !state.withLock({ $0.drainAnnounced }) { send(.drain) }
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

    /// Ends the outbound side without a close frame (the peer is gone).
    func finishOutbound() {
        let writer = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.queue.finish() else { return nil }
            defer { state.writer = nil }
            return state.writer
        }
        writer?.resume()
    }

    /// The next item for the writer; nil when the writer is done.
    func nextOutbound() async -> OutboundQueue.Item? {
        while true {
            let next = state.withLock { $0.queue.next() }
            switch next {
            case .item(let item): return item
            case .finished: return nil
            case .wait:
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = state.withLock { state -> Bool in
                            guard state.queue.writerWaiting else { return true }
                            state.writer = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    let writer = state.withLock { state -> CheckedContinuation<Void, Never>? in
                        state.queue.stopWaiting()
                        defer { state.writer = nil }
                        return state.writer
                    }
                    writer?.resume()
                }
                if Task.isCancelled { return nil }
            }
        }
    }

    private static func takeWriter(
        _ result: OutboundQueue.EnqueueResult, from state: inout State
    ) -> CheckedContinuation<Void, Never>? {
        switch result {
        case .enqueued(let wake), .overBudget(let wake):
            guard wake else { return nil }
            defer { state.writer = nil }
            return state.writer
        case .closed:
            return nil
        }
    }

    // MARK: - Subscriptions

    func beginSubscribe(_ key: ProcessInstanceKey) -> SubscriptionTable<HeldOutcome>.BeginResult {
        state.withLock { state in
            state.closed ? .limitReached : state.subscriptions.begin(key)
        }
    }

    /// Activates the subscription: queues `subscribed`, the parked outcomes, then what was held
    /// back meanwhile. Returns the held-back live outcomes it could not queue (to report as lost),
    /// or nil when the key was unsubscribed meanwhile.
    func completeSubscribe(_ key: ProcessInstanceKey, parked: [Outcome]) -> [HeldOutcome]? {
        let (held, writer, overBudget) = state.withLock {
            state -> ([HeldOutcome]?, CheckedContinuation<Void, Never>?, Bool) in
            guard let held = state.subscriptions.complete(key) else { return (nil, nil, false) }
            var wake = false
            var overBudget = false
            var lost: [HeldOutcome] = []
            func enqueue(_ frame: [UInt8]) -> Bool {
                switch state.queue.enqueue(frame) {
                case .enqueued(let wakeWriter):
                    wake = wake || wakeWriter
                    return true
                case .overBudget(let wakeWriter):
                    wake = wake || wakeWriter
                    overBudget = true
                    return false
                case .closed:
                    return false
                }
            }
            _ = enqueue(AffinityMessage.subscribed(key: key).encoded())
            for outcome in parked where enqueue(outcome.frame) {
                state.inFlight[outcome.id, default: []].append(.parked(ParkedOutcomeReference(outcome)))
            }
            for item in held {
                if enqueue(item.outcome.frame) {
                    state.inFlight[item.outcome.id, default: []].append(item.inFlight)
                } else {
                    lost.append(item)
                }
            }
            var writer: CheckedContinuation<Void, Never>?
            if wake {
                writer = state.writer
                state.writer = nil
            }
            return (lost, writer, overBudget)
        }
        writer?.resume()
        if overBudget { onSlowConsumer() }
        return held
    }

    /// Removes a subscription; returns the in-flight entries it leaves behind (outcomes held back
    /// while it loaded, and outcomes sent but not acked yet), or nil if the key was not subscribed.
    /// The deliveries waiting for those acks must not wait for a subscriber that has left.
    func unsubscribe(_ key: ProcessInstanceKey) -> [InFlightOutcome]? {
        state.withLock { state -> [InFlightOutcome]? in
            guard let held = state.subscriptions.remove(key) else { return nil }
            var released = held.map(\.inFlight)
            for (id, entries) in state.inFlight {
                let forKey = entries.filter { $0.key == key }
                guard !forKey.isEmpty else { continue }
                released += forKey
                let others = entries.filter { $0.key != key }
                state.inFlight[id] = others.isEmpty ? nil : others
            }
            return released
        }
    }

    func offer(_ outcome: Outcome, as inFlight: InFlightOutcome) -> Bool {
        let (accepted, writer, overBudget) = state.withLock {
            state -> (Bool, CheckedContinuation<Void, Never>?, Bool) in
            guard !state.closed else { return (false, nil, false) }
            switch state.subscriptions.offer(HeldOutcome(outcome: outcome, inFlight: inFlight), for: outcome.key) {
            case .notSubscribed:
                return (false, nil, false)
            case .held:
                return (true, nil, false)
            case .send:
                let result = state.queue.enqueue(outcome.frame)
                let writer = Self.takeWriter(result, from: &state)
                switch result {
                case .enqueued:
                    state.inFlight[outcome.id, default: []].append(inFlight)
                    return (true, writer, false)
                case .overBudget:
                    return (false, writer, true)
                case .closed:
                    return (false, writer, false)
                }
            }
        }
        writer?.resume()
        if overBudget { onSlowConsumer() }
        return accepted
    }

    /// Takes the in-flight entries for an acked outcome id (empty if none).
    func takeInFlight(id: String) -> [InFlightOutcome] {
        state.withLock { $0.inFlight.removeValue(forKey: id) ?? [] }
    }

    /// Marks the connection closed and returns everything that must be cleaned up.
    func closeAndTakeState() -> (keys: [ProcessInstanceKey], held: [HeldOutcome], inFlight: [InFlightOutcome]) {
        state.withLock { state in
            state.closed = true
            let (keys, held) = state.subscriptions.removeAll()
            let inFlight = state.inFlight.values.flatMap { $0 }
            state.inFlight.removeAll()
            return (keys, held, inFlight)
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
