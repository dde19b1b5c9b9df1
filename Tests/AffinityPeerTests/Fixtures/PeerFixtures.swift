import AffinityProtocol
import AffinityTestSupport
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

@testable import AffinityPeer

/// A logger for tests: silent unless `AFFINITY_TEST_LOG_LEVEL` is set (e.g. `debug`).
func makeTestLogger(_ label: String) -> Logger {
    let configured = ProcessInfo.processInfo.environment["AFFINITY_TEST_LOG_LEVEL"]
    guard let level = configured.flatMap({ Logger.Level(rawValue: $0) }) else {
        return Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
    }
    var logger = Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = level
    return logger
}

/// Loads credentials from an identity and a CA bundle.
func makeCredentials(_ identity: TestPKI.Identity, trusting caPath: String) throws -> PeerTLSCredentials {
    try PeerTLSCredentials(
        files: PeerTLSFiles(
            certificatePath: identity.certificatePath,
            privateKeyPath: identity.keyPath,
            trustRootsPath: caPath
        ),
        logger: makeTestLogger("peer.tls")
    )
}

/// Runs `services` in a `ServiceGroup` for the duration of `body`, then shuts them down gracefully and
/// waits for them to stop, also when `body` throws.
func withRunningServices<Result: Sendable>(
    _ services: [any Service],
    _ body: () async throws -> Result
) async throws -> Result {
    var configuration = ServiceGroupConfiguration(services: services, logger: makeTestLogger("services"))
    configuration.maximumGracefulShutdownDuration = .seconds(10)
    let group = ServiceGroup(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: Swift.Result<Result, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try result.get()
    }
}

/// Starts a peer server on a free loopback port for the duration of `body`.
func withPeerServer<Result: Sendable>(
    credentials: PeerTLSCredentials,
    handler: any PeerDeliveryHandler,
    port: Int = 0,
    replicaID: String = "replica-server",
    maxRequestBytes: Int = 8 * 1024 * 1024,
    metrics: any MetricsFactory = NOOPMetricsHandler.instance,
    _ body: (PeerServer, PeerAddress) async throws -> Result
) async throws -> Result {
    let server = try PeerServer(
        configuration: PeerServerConfiguration(
            host: "127.0.0.1", port: port, replicaID: replicaID, maxRequestBytes: maxRequestBytes),
        credentials: credentials,
        handler: handler,
        logger: makeTestLogger("peer.server"),
        metricsFactory: metrics
    )
    return try await withRunningServices([server]) {
        let port = try await server.listeningPort()
        return try await body(server, PeerAddress(host: "127.0.0.1", port: port))
    }
}

/// Runs a connection pool for the duration of `body`.
func withPeerPool<Result: Sendable>(
    credentials: PeerTLSCredentials,
    expectedServerName: String? = nil,
    replicaID: String = "replica-client",
    maxRequestBytes: Int = 8 * 1024 * 1024,
    metrics: any MetricsFactory = NOOPMetricsHandler.instance,
    lateDelivered: @escaping @Sendable (PeerDeliveredOutcome) -> Void = { _ in },
    directory: (any PeerDirectory)? = nil,
    addressLifetime: Duration = .seconds(2),
    _ body: (PeerConnectionPool) async throws -> Result
) async throws -> Result {
    let pool = PeerConnectionPool(
        configuration: PeerClientConfiguration(
            replicaID: replicaID,
            expectedServerName: expectedServerName,
            defaultTimeout: .seconds(5),
            maxRequestBytes: maxRequestBytes,
            reconnectInitialBackoff: .milliseconds(20),
            reconnectMaximumBackoff: .milliseconds(200)
        ),
        credentials: credentials,
        directory: directory,
        addressLifetime: addressLifetime,
        logger: makeTestLogger("peer.pool"),
        metricsFactory: metrics,
        lateDelivered: lateDelivered
    )
    return try await withRunningServices([pool]) {
        try await body(pool)
    }
}

/// A handler that records what it received and answers as told.
actor RecordingHandler: PeerDeliveryHandler {
    private(set) var outcomes: [Outcome] = []
    /// The outcomes received as legacy broadcasts.
    private(set) var legacyOutcomes: [Outcome] = []
    private(set) var callers: [PeerCaller] = []
    /// How many deliveries were cancelled while the handler waited (the caller's deadline passed).
    private(set) var cancelledCount = 0
    /// What broken streams reported as `delivered` answers the caller may not have received, per report.
    private(set) var possiblyLostAnswers: [[PeerDeliveredOutcome]] = []
    private let delay: Duration?
    private let answer: @Sendable (Outcome) throws -> ForwardedDeliveryStatus

    init(
        delay: Duration? = nil,
        answer: @escaping @Sendable (Outcome) throws -> ForwardedDeliveryStatus = { _ in .delivered }
    ) {
        self.delay = delay
        self.answer = answer
    }

    func deliverToLegacyClients(_ outcome: Outcome, from caller: PeerCaller) async throws {
        self.legacyOutcomes.append(outcome)
        self.callers.append(caller)
    }

    func deliveredAnswersMayBeLost(_ outcomes: [PeerDeliveredOutcome]) async {
        self.possiblyLostAnswers.append(outcomes)
    }

    func deliver(_ outcome: Outcome, from caller: PeerCaller) async throws -> ForwardedDeliveryStatus {
        self.outcomes.append(outcome)
        self.callers.append(caller)
        if let delay = self.delay {
            do {
                try await Task.sleep(for: delay)
            } catch {
                self.cancelledCount += 1
                throw error
            }
        }
        return try self.answer(outcome)
    }
}

/// An outcome with small JSON variables (or `variables`, a JSON object), id `job-<number>` (or `id`).
func sampleOutcome(
    _ number: Int = 1, key: String = "2251799813685249", id: String? = nil, variables: Data? = nil
) -> Outcome {
    // the arguments the tests pass are valid; a mistake in a test fails it here, loudly
    try! Outcome(
        id: id ?? "job-\(number)",
        key: ProcessInstanceKey(key)!,
        variables: Array(variables ?? Data(#"{"n":\#(number),"ok":true}"#.utf8))
    )
}

/// A `DeliverStream` request as a peer writes it, for tests that send what the pool cannot (malformed
/// requests, request ids of their own).
func deliverRequest(
    _ requestID: UInt64, id: String, key: String, variables: Data, origin: String = "replica-client"
) -> Affinity_Peer_V1_DeliverRequest {
    var request = Affinity_Peer_V1_DeliverRequest()
    request.requestID = requestID
    request.id = id
    request.key = key
    request.variables = variables
    request.originReplica = origin
    return request
}

/// A fresh cluster CA with two peers issued by it: the server's credentials (`replica-1`) and the client's
/// (`replica-3`), the set-up most peer tests share.
func withClusterCredentials<T>(
    _ body: (_ server: PeerTLSCredentials, _ client: PeerTLSCredentials) async throws -> T
) async throws -> T {
    try await withTestPKI { pki in
        let ca = try pki.makeAuthority("cluster")
        let server = try makeCredentials(try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
        let client = try makeCredentials(try pki.issue("replica-3", by: ca), trusting: ca.certificatePath)
        return try await body(server, client)
    }
}

/// A ``PeerDeliveryHandler`` made of a closure, for the tests' servers (legacy broadcasts are not used there).
struct ClosureHandler: PeerDeliveryHandler {
    private let body: @Sendable (Outcome, PeerCaller) async throws -> ForwardedDeliveryStatus

    init(_ body: @escaping @Sendable (Outcome, PeerCaller) async throws -> ForwardedDeliveryStatus) {
        self.body = body
    }

    func deliver(_ outcome: Outcome, from caller: PeerCaller) async throws -> ForwardedDeliveryStatus {
        try await body(outcome, caller)
    }

    func deliverToLegacyClients(_ outcome: Outcome, from caller: PeerCaller) async throws {
        _ = try await body(outcome, caller)
    }

    /// These servers have no store to tell.
    func deliveredAnswersMayBeLost(_ outcomes: [PeerDeliveredOutcome]) async {}
}

/// A directory of replica addresses the test changes as it goes, counting the lookups.
final class TestDirectory: PeerDirectory {
    struct Unreadable: Error {}

    private let state = Mutex<(addresses: [String: PeerAddress], unreadable: Bool, lookups: Int)>(([:], false, 0))

    func address(ofReplica replicaID: String) async throws -> PeerAddress? {
        let (address, unreadable) = state.withLock { state in
            state.lookups += 1
            return (state.addresses[replicaID], state.unreadable)
        }
        if unreadable { throw Unreadable() }
        return address
    }

    /// Registers `replicaID` at `address`, or removes it (`nil`).
    func register(_ replicaID: String, at address: PeerAddress?) {
        state.withLock { $0.addresses[replicaID] = address }
    }

    /// Makes every lookup fail (the registry cannot be read).
    func setUnreadable(_ unreadable: Bool) {
        state.withLock { $0.unreadable = unreadable }
    }

    var lookups: Int { state.withLock { $0.lookups } }
}
