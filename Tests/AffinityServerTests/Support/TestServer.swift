import AffinityServer
import Logging
import NIOPosix
import Prometheus
import ServiceLifecycle
import Testing

/// A replica running in-process on 127.0.0.1 with port 0, with its own Prometheus registry.
struct TestServer: Sendable {
    let port: Int
    let metricsPort: Int?
    let registry: PrometheusCollectorRegistry
    let configuration: AffinityConfiguration
    /// Starts the graceful shutdown (drain) without waiting for it.
    let beginShutdown: @Sendable () async -> Void

    var webSocketURL: String { "ws://127.0.0.1:\(port)/v1/ws" }

    /// The Prometheus text of this server's metrics.
    func metricsText() -> String {
        registry.emitToString()
    }

    /// The value of one metric line such as `affinity_outcomes_parked_total`, if present.
    func metric(_ name: String) -> Double? {
        for line in metricsText().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }
}

let quietLogger = Logger(label: "affinity-test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Runs a replica for the duration of `body`, then shuts it down gracefully (drain included).
func withServer<T: Sendable>(
    _ configure: (inout AffinityConfiguration) -> Void = { _ in },
    store: (any OutcomeStore)? = nil,
    _ body: @Sendable (TestServer) async throws -> T
) async throws -> T {
    var configuration = AffinityConfiguration(replicaID: "test-replica")
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.drainTimeout = .seconds(5)
    configure(&configuration)
    let registry = PrometheusCollectorRegistry()
    let factory = PrometheusMetricsFactory(registry: registry)
    let (ports, portsContinuation) = AsyncStream.makeStream(of: ListeningPorts.self)
    let application = try buildApplication(
        configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: quietLogger,
        metrics: MetricsExport(factory: factory, render: { registry.emitToBuffer() }),
        store: store,
        onListening: { portsContinuation.yield($0) })
    let group = ServiceGroup(services: [application], logger: quietLogger)
    let finalConfiguration = configuration
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let listening = await iterator.next() else {
            throw TestFailure("the server did not start")
        }
        let server = TestServer(
            port: listening.main, metricsPort: listening.metrics, registry: registry, configuration: finalConfiguration,
            beginShutdown: { await group.triggerGracefulShutdown() })
        let result: T
        do {
            result = try await body(server)
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
