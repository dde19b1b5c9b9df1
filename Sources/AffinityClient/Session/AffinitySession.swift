public import AffinityProtocol
import CoreMetrics
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// A front-end's session with the affinity service: one WebSocket (role `client`, a stable
/// `clientId`) that reconnects with back-off, re-subscribes every pending key after a reconnect or
/// a `drain`, de-duplicates outcomes by id and acknowledges an outcome only after it was handed to
/// the request waiting for it.
///
/// Run it as a `Service` in the front-end's `ServiceGroup`, then wait for outcomes from any task:
///
/// ```swift
/// let session = AffinitySession(
///     configuration: .init(url: "ws://affinity:8080/v1/ws", token: .file(path: "/secrets/client-token")),
///     logger: logger)
/// let group = ServiceGroup(services: [session, httpServer], gracefulShutdownSignals: [.sigterm], logger: logger)
///
/// // in a request handler, right after CreateProcessInstance returned `key`:
/// do {
///     let outcome = try await session.awaitOutcome(processInstanceKey: key, timeout: .seconds(30))
///     let order = try outcome.decode(Order.self)
/// } catch let error as AffinityClientError where error.code == .timeout {
///     // answer 202/504 with a link built from error.processInstanceKey
/// }
/// ```
///
/// The replica parks an outcome that arrives before the subscribe, so waiting right after the
/// instance was created cannot miss it.
public final class AffinitySession: Service, Sendable {
    /// This session's stable client id, sent in `hello`.
    public let clientID: String
    let connection: ReconnectingConnection
    let logger: Logger
    let metrics: SessionMetrics
    let state: Mutex<SessionState>
    let confirmations = AcknowledgementConfirmations()
    /// How long a request waits for the replica to confirm its ack before it returns the outcome anyway.
    static let confirmationTimeout: Duration = .seconds(2)

    struct SessionState: Sendable {
        var machine: SubscriptionStateMachine
        var mailboxes: [SubscriberID: Mailbox<Outcome>] = [:]
        var writer: ConnectionWriter?
        var replica: String?
        var nextSubscriber: UInt64 = 0
        var stopped = false
    }

    /// Creates a session; nothing connects until ``run()``.
    ///
    /// - Parameters:
    ///   - configuration: URLs, token, TLS and reconnect settings.
    ///   - clientID: the stable client id; defaults to a random UUID per process.
    ///   - logger: the logger (connection events at info/debug, per-message events at trace).
    ///   - metricsFactory: where the session's metrics go; defaults to the bootstrapped factory.
    public init(
        configuration: AffinityConnectionConfiguration, clientID: String = UUID().uuidString, logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.clientID = clientID
        var logger = logger
        logger[metadataKey: "affinity.client"] = "\(clientID)"
        self.logger = logger
        self.connection = ReconnectingConnection(
            configuration: configuration, role: .client, clientID: clientID, logger: logger)
        self.metrics = SessionMetrics(factory: metricsFactory)
        self.state = Mutex(
            SessionState(machine: SubscriptionStateMachine(recentIDCapacity: configuration.recentOutcomeIDCapacity)))
    }

    /// Keeps the session connected until graceful shutdown or cancellation; then every waiting
    /// request fails with `unavailable`.
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
        let mailboxes = state.withLock { state -> [Mailbox<Outcome>] in
            state.stopped = true
            state.writer = nil
            state.machine.disconnected()
            return Array(state.mailboxes.values)
        }
        for mailbox in mailboxes { mailbox.fail(.stopped()) }
    }

    /// Waits for the next outcome of `processInstanceKey`, at most `timeout`.
    ///
    /// Subscribes for the duration of the call (re-subscribing after reconnects) and unsubscribes when
    /// it returns, throws, times out or is cancelled. The outcome is acknowledged after it was taken.
    ///
    /// - Throws: ``AffinityClientError`` with code `timeout` (carrying the key) when nothing arrived in
    ///   time, `unavailable` when the session is shut down, `forbidden` when the replica refused the
    ///   subscription; `CancellationError` when the task was cancelled.
    public func awaitOutcome(processInstanceKey: ProcessInstanceKey, timeout: Duration) async throws -> ReceivedOutcome
    {
        let subscriber = try subscribe(processInstanceKey)
        defer { release(subscriber) }
        return try await nextOutcome(for: subscriber, key: processInstanceKey, timeout: timeout)
    }

    /// The outcomes of `processInstanceKey` as they arrive (a chat process emits several per
    /// instance), in order and without duplicates.
    ///
    /// The subscription starts when iteration starts and ends when it ends, throws or is cancelled.
    /// With `timeout`, waiting longer than that for one outcome throws a `timeout` error carrying the key.
    ///
    /// ```swift
    /// for try await outcome in session.outcomes(processInstanceKey: key, timeout: .seconds(60)) {
    ///     print(outcome.variablesJSON)
    /// }
    /// ```
    public func outcomes(processInstanceKey: ProcessInstanceKey, timeout: Duration? = nil) -> OutcomeSequence {
        OutcomeSequence(session: self, key: processInstanceKey, timeout: timeout)
    }

    /// The replica the session is connected to, nil while disconnected.
    public var connectedReplica: String? {
        state.withLock { $0.writer == nil ? nil : $0.replica }
    }

    /// Counts of what the session holds for requests; all zero when no request is running.
    public var pendingState: PendingState {
        state.withLock { state in
            PendingState(
                subscribers: state.machine.subscriberCount, keys: state.machine.keys.count,
                confirmedKeys: state.machine.confirmedKeyCount,
                waitingRequests: state.mailboxes.values.filter(\.isWaiting).count,
                bufferedOutcomes: state.mailboxes.values.reduce(0) { $0 + $1.bufferedCount },
                rememberedOutcomeIDs: state.machine.rememberedIDCount,
                recentOutcomeIDs: state.machine.recentIDs.count, mailboxes: state.mailboxes.count)
        }
    }
}
