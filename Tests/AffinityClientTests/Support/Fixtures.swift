import AffinityClient
import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import CoreMetrics
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Testing

let quietLogger = Logger(label: "affinity-client-test", factory: { _ in SwiftLogNoOpLogHandler() })

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Fast reconnects for tests.
let testBackoff = ReconnectBackoff(initial: .milliseconds(50), maximum: .milliseconds(400))

func testConnection(_ urls: [String], token: BearerToken? = nil) -> AffinityConnectionConfiguration {
    var configuration = AffinityConnectionConfiguration(urls: urls, token: token)
    configuration.backoff = testBackoff
    configuration.handshakeTimeout = .seconds(5)
    return configuration
}

func webSocketURL(port: Int) -> String { "ws://127.0.0.1:\(port)/v1/ws" }

/// A replica running in-process on 127.0.0.1, port 0, for the duration of `body`.
func withServer<T: Sendable>(
    replicaID: String = "replica-in-process",
    _ configure: (inout AffinityConfiguration) -> Void = { _ in },
    _ body: @Sendable (_ url: String) async throws -> T
) async throws -> T {
    var configuration = AffinityConfiguration(replicaID: replicaID)
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.drainTimeout = .seconds(3)
    configure(&configuration)
    let (ports, portsContinuation) = AsyncStream.makeStream(of: ListeningPorts.self)
    let application = try buildApplication(
        configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: quietLogger,
        metrics: MetricsExport(factory: NOOPMetricsHandler.instance, render: { [] }),
        onListening: { portsContinuation.yield($0) })
    let group = ServiceGroup(services: [application], logger: quietLogger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let listening = await iterator.next() else { throw TestFailure("the server did not start") }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(webSocketURL(port: listening.main)))
        } catch {
            result = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try? await tasks.waitForAll()
        return try result.get()
    }
}

/// Runs `service` (a session or publisher) for the duration of `body`, then cancels it.
func withRunning<S: Service, T: Sendable>(_ service: S, _ body: @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await service.run() }
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        tasks.cancelAll()
        try? await tasks.waitForAll()
        return try result.get()
    }
}

/// A connected session and publisher against `urls` for the duration of `body`.
func withClients<T: Sendable>(
    session sessionURLs: [String], publisher publisherURLs: [String]? = nil, clientToken: BearerToken? = nil,
    workerToken: BearerToken? = nil, waitForConnections: Bool = true,
    _ body: @Sendable (AffinitySession, OutcomePublisher) async throws -> T
) async throws -> T {
    let session = AffinitySession(
        configuration: testConnection(sessionURLs, token: clientToken), clientID: "front-end-1", logger: quietLogger)
    let publisher = OutcomePublisher(
        configuration: testConnection(publisherURLs ?? sessionURLs, token: workerToken), workerID: "worker-1",
        logger: quietLogger)
    return try await withRunning(session) {
        try await withRunning(publisher) {
            if waitForConnections {
                try await eventually("session connected") { session.connectedReplica != nil }
                try await eventually("publisher connected") { publisher.isConnected }
            }
            return try await body(session, publisher)
        }
    }
}

/// Polls `condition` every 20 ms until it holds; fails after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(10), _ condition: @Sendable () -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting for: \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

func outcome(_ id: String, _ key: ProcessInstanceKey, _ json: String) throws -> Outcome {
    try Outcome(id: id, key: key, variables: Array(json.utf8))
}

func key(_ value: Int64) -> ProcessInstanceKey { ProcessInstanceKey(value)! }
