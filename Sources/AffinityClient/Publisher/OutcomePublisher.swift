public import AffinityProtocol
import CoreMetrics
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// The worker side of the protocol: delivers outcomes to the affinity service (role `worker`) and
/// reports how each was answered, so that the job worker completes the Zeebe job only after
/// `delivered` or `parked`.
///
/// Many outcomes are pipelined on one connection; each ``publish(_:timeout:)`` waits only for the
/// answer to its own id. When no connection is up, `publish` fails at once with `unavailable`, and
/// the publisher keeps reconnecting (to the next URL after a failure or a `drain`).
///
/// A replica that drains sends `drain` first and closes later: outcomes already sent there are still
/// answered, and a `publish` that starts in between waits (at most the handshake timeout) for the
/// connection to the next replica instead of failing, so a rolling restart of the service costs the
/// worker no failed job.
///
/// ```swift
/// let publisher = OutcomePublisher(
///     configuration: .init(urls: ["ws://affinity-0:8080/v1/ws", "ws://affinity-1:8080/v1/ws"],
///                          token: .file(path: "/secrets/worker-token")),
///     logger: logger)
/// // run `publisher` in the worker's ServiceGroup, then for each job:
/// let outcome = try Outcome(id: String(job.key), key: instanceKey, variables: variablesJSON)
/// let status = try await publisher.publish(outcome, timeout: .seconds(15))  // .delivered or .parked
/// ```
public final class OutcomePublisher: Service, Sendable {
    /// The id sent in `hello`.
    public let workerID: String
    private let connection: ReconnectingConnection
    private let maxOutcomeBytes: Int
    private let handoverTimeout: Duration
    private let logger: Logger
    private let published: Counter
    private let failed: Counter
    /// Outcomes sent and waiting for the service's answer (`affinity_publisher_pending_outcomes`).
    private let pending: Meter
    private let state = Mutex(PublisherState())

    private struct PublisherState {
        var writer: ConnectionWriter?
        var replica: String?
        var nextRequest: UInt64 = 0
        /// Waiting publishes by outcome id (several callers may publish the same id).
        var requests: [String: [UInt64: Mailbox<Result<DeliveryStatus, AffinityClientError>>]] = [:]
        var stopped = false
        /// Set when the replica said `drain`: until then, a publish without a connection waits for the next one.
        var handoverDeadline: ContinuousClock.Instant?
        /// Publishes waiting for the next connection during a hand-over.
        var connectionWaiters: [UInt64: Mailbox<Void>] = [:]
        /// The connection that said `drain`, closed by this side once nothing sent on it awaits an answer.
        var drainingWriter: ConnectionWriter?

        /// Publishes waiting for their answer.
        var pendingCount: Int { requests.values.reduce(0) { $0 + $1.count } }

        /// The draining connection's writer once nothing awaits an answer on it (taken: finish it).
        mutating func takeIdleDrainingWriter() -> ConnectionWriter? {
            guard requests.isEmpty, let writer = drainingWriter else { return nil }
            drainingWriter = nil
            return writer
        }
    }

    /// Creates a publisher; nothing connects until ``run()``.
    ///
    /// - Parameters:
    ///   - configuration: URLs, worker token, TLS and reconnect settings.
    ///   - workerID: the id sent in `hello`; defaults to a random UUID per process.
    ///   - logger: the logger.
    ///   - metricsFactory: where the publisher's metrics go.
    public init(
        configuration: AffinityConnectionConfiguration, workerID: String = UUID().uuidString, logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.workerID = workerID
        var logger = logger
        logger[metadataKey: "affinity.worker"] = "\(workerID)"
        self.logger = logger
        self.connection = ReconnectingConnection(
            configuration: configuration, role: .worker, clientID: workerID, logger: logger)
        self.maxOutcomeBytes = configuration.maxOutcomeBytes
        self.handoverTimeout = configuration.handshakeTimeout
        self.published = Counter(
            label: "affinity_publisher_outcomes_total", dimensions: [("result", "answered")], factory: metricsFactory)
        self.failed = Counter(
            label: "affinity_publisher_outcomes_total", dimensions: [("result", "failed")], factory: metricsFactory)
        self.pending = Meter(label: "affinity_publisher_pending_outcomes", factory: metricsFactory)
    }

    /// Keeps the connection up until graceful shutdown or cancellation; then waiting publishes fail
    /// with `unavailable`.
    ///
    /// - Throws: ``AffinityClientError`` with code `bad_request` when no URL is configured.
    public func run() async throws {
        defer { stop() }
        try connection.validate()
        await cancelWhenGracefulShutdown {
            await self.connection.run(events: self)
        }
    }

    private func stop() {
        let (waiting, connectionWaiters) = state.withLock { state in
            state.stopped = true
            state.writer = nil
            defer {
                state.requests.removeAll()
                state.connectionWaiters.removeAll()
            }
            return (state.requests, state.connectionWaiters.values)
        }
        pending.set(0)
        fail(waiting, with: { id in .stopped(outcomeID: id) })
        for waiter in connectionWaiters {
            waiter.fail(AffinityClientError(code: .unavailable, message: "the publisher stopped"))
        }
    }

    /// True while a connection to a replica is up.
    public var isConnected: Bool { state.withLock { $0.writer != nil } }

    /// True while an outcome published now can be delivered: connected to a replica, or handing over
    /// from a draining replica to the next one (a publish then waits for the new connection). The
    /// affinity worker activates jobs only while this holds.
    public var canPublish: Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            if state.writer != nil { return true }
            guard let deadline = state.handoverDeadline else { return false }
            return ContinuousClock.now < deadline
        }
    }

    /// The replica the publisher is connected to, nil while disconnected.
    public var connectedReplica: String? { state.withLock { $0.writer == nil ? nil : $0.replica } }

    /// Publishes still waiting for their answer.
    public var pendingCount: Int { state.withLock { $0.pendingCount } }

    /// Delivers `outcome` and waits for the service's answer.
    ///
    /// - Returns: `.delivered` (a subscribed client acknowledged it) or `.parked` (stored until a client subscribes).
    /// - Throws: ``AffinityClientError``: `unavailable` at once when not connected, or when the
    ///   connection is lost before the answer; `timeout` after `timeout`; the service's code
    ///   (`bad_request`, `unavailable`, ...) when it refused the outcome; `too_large` at once when the
    ///   frame exceeds ``AffinityConnectionConfiguration/maxOutcomeBytes``. In every case
    ///   the job must not be completed. `CancellationError` when the task is cancelled.
    public func publish(_ outcome: Outcome, timeout: Duration) async throws -> DeliveryStatus {
        let size = outcome.frame.count
        guard size <= maxOutcomeBytes else {
            failed.increment()
            throw AffinityClientError(
                code: .tooLarge, message: "the outcome frame has \(size) bytes, more than \(maxOutcomeBytes)",
                processInstanceKey: outcome.key, outcomeID: outcome.id)
        }
        let started = ContinuousClock.now
        let mailbox = Mailbox<Result<DeliveryStatus, AffinityClientError>>()
        var registered = register(mailbox, for: outcome.id)
        if case .handover(let deadline) = registered {
            let waiter = Mailbox<Void>()
            let token = state.withLock { state -> UInt64 in
                state.nextRequest += 1
                state.connectionWaiters[state.nextRequest] = waiter
                return state.nextRequest
            }
            registered = register(mailbox, for: outcome.id)
            if case .handover = registered {
                let wait = min(timeout, max(deadline - ContinuousClock.now, .zero))
                if case .cancelled = await waiter.next(timeout: wait) {
                    state.withLock { _ = $0.connectionWaiters.removeValue(forKey: token) }
                    throw CancellationError()
                }
                registered = register(mailbox, for: outcome.id)
            }
            state.withLock { _ = $0.connectionWaiters.removeValue(forKey: token) }
        }
        guard case .registered(let request, let writer) = registered else {
            failed.increment()
            throw AffinityClientError(
                code: .unavailable, message: "not connected to the affinity service", processInstanceKey: outcome.key,
                outcomeID: outcome.id)
        }
        defer {
            let idle = state.withLock { state in
                state.requests[outcome.id]?[request] = nil
                if state.requests[outcome.id]?.isEmpty == true { state.requests[outcome.id] = nil }
                pending.set(state.pendingCount)
                return state.takeIdleDrainingWriter()
            }
            idle?.finish()
        }
        guard writer.send(.outcome(outcome)) else {
            failed.increment()
            throw AffinityClientError(
                code: .unavailable, message: "the connection to the affinity service closed",
                processInstanceKey: outcome.key, outcomeID: outcome.id)
        }
        logger.trace("outcome sent", metadata: ["affinity.key": "\(outcome.key)", "affinity.outcome": "\(outcome.id)"])
        switch await mailbox.next(timeout: max(timeout - (ContinuousClock.now - started), .zero)) {
        case .value(.success(let status)):
            published.increment()
            return status
        case .value(.failure(var error)), .failed(var error):
            failed.increment()
            error.processInstanceKey = error.processInstanceKey ?? outcome.key
            throw error
        case .timedOut:
            failed.increment()
            throw AffinityClientError(
                code: .timeout, message: "no answer from the affinity service within \(timeout)",
                processInstanceKey: outcome.key, outcomeID: outcome.id)
        case .cancelled:
            throw CancellationError()
        }
    }

    private enum Registration {
        case registered(UInt64, ConnectionWriter)
        /// No connection, but the last one drained: the next one is on its way until the deadline.
        case handover(deadline: ContinuousClock.Instant)
        case notConnected
    }

    /// Registers `mailbox` for the answer to `id` when a connection is up.
    private func register(
        _ mailbox: Mailbox<Result<DeliveryStatus, AffinityClientError>>, for id: String
    ) -> Registration {
        state.withLock { state in
            guard !state.stopped else { return .notConnected }
            guard let writer = state.writer else {
                if let deadline = state.handoverDeadline, ContinuousClock.now < deadline {
                    return .handover(deadline: deadline)
                }
                return .notConnected
            }
            state.nextRequest += 1
            state.requests[id, default: [:]][state.nextRequest] = mailbox
            pending.set(state.pendingCount)
            return .registered(state.nextRequest, writer)
        }
    }

    private func fail(
        _ requests: [String: [UInt64: Mailbox<Result<DeliveryStatus, AffinityClientError>>]],
        with error: (String) -> AffinityClientError
    ) {
        for (id, mailboxes) in requests {
            for mailbox in mailboxes.values { mailbox.fail(error(id)) }
        }
    }
}

extension OutcomePublisher: ConnectionEvents {
    func connectionReady(writer: ConnectionWriter, replica: String) {
        let waiters = state.withLock { state -> [Mailbox<Void>] in
            guard !state.stopped else { return [] }
            state.writer = writer
            state.replica = replica
            state.handoverDeadline = nil
            defer { state.connectionWaiters.removeAll() }
            return Array(state.connectionWaiters.values)
        }
        for waiter in waiters { waiter.push(()) }
        logger.info("publisher connected to the affinity service", metadata: ["affinity.replica": "\(replica)"])
    }

    func connectionEnded() {
        let waiting = state.withLock { state in
            state.writer = nil
            state.drainingWriter = nil
            defer { state.requests.removeAll() }
            return state.requests
        }
        pending.set(0)
        fail(waiting) { id in
            AffinityClientError(
                code: .unavailable, message: "the connection closed before the affinity service answered",
                outcomeID: id)
        }
    }

    func connectionDraining() {
        let idle = state.withLock { state in
            state.drainingWriter = state.writer
            state.writer = nil
            state.handoverDeadline = ContinuousClock.now + handoverTimeout
            return state.takeIdleDrainingWriter()
        }
        idle?.finish()
        logger.info(
            "the replica is draining; outcomes sent to it are still answered, new ones wait for the next replica")
    }

    func received(_ message: AffinityMessage) {
        switch message {
        case .result(let id, let status):
            answer(id: id, with: .success(status))
        case .error(let code, let text, let ref):
            let error = AffinityError(code: code, message: text, ref: ref)
            guard let ref,
                answer(
                    id: ref,
                    with: .failure(AffinityClientError(code: code, message: text, outcomeID: ref, cause: error)))
            else {
                logger.warning(
                    "the affinity service answered with an error",
                    metadata: ["affinity.code": "\(code)", "affinity.ref": "\(ref ?? "-")", "error": "\(text)"])
                return
            }
        default:
            logger.debug("ignoring an unexpected message", metadata: ["affinity.type": "\(message.type)"])
        }
    }

    @discardableResult
    private func answer(id: String, with result: Result<DeliveryStatus, AffinityClientError>) -> Bool {
        let (mailboxes, idle) = state.withLock { state in
            let mailboxes = state.requests.removeValue(forKey: id).map { Array($0.values) } ?? []
            pending.set(state.pendingCount)
            return (mailboxes, state.takeIdleDrainingWriter())
        }
        for mailbox in mailboxes { mailbox.push(result) }
        idle?.finish()
        return !mailboxes.isEmpty
    }
}
