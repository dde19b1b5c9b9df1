import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The test gateway's inspection endpoint: read-only JSON over HTTP on a loopback port, so that tests
/// running the gateway as its own process (`zeebe-test-gateway`) can read the engine's state.
///
/// TEST SUPPORT ONLY: it has no authentication and exposes every variable of every instance.
///
/// | request | answer |
/// |---|---|
/// | `GET /engine` | the whole ``EngineInspection`` |
/// | `GET /engine/jobs/{key}` | one ``InspectedJob`` (open or completed), 404 if unknown |
/// | `GET /engine/instances/{key}` | one ``InspectedInstance``, 404 if unknown |
public struct TestGatewayInspectionServer: Sendable {
    /// The bound loopback port.
    public let port: Int
}

/// Serves the inspection endpoint of `engine` on 127.0.0.1 (`port` 0: any free port) for the duration
/// of `body`, then stops it.
public func withTestGatewayInspectionServer<Result: Sendable>(
    engine: GatewayEngine,
    port: Int = 0,
    logger: Logger = Logger(label: "zeebe.test-gateway.inspection"),
    _ body: (TestGatewayInspectionServer) async throws -> Result
) async throws -> Result {
    let router = Router()
    router.get("/engine") { _, _ -> Response in
        try inspectionResponse(engine.inspection())
    }
    router.get("/engine/jobs/{key}") { _, context -> Response in
        let key = context.parameters.get("key") ?? ""
        guard let job = engine.inspection().jobs.first(where: { $0.key == key }) else {
            return notFound("no job with key '\(key)'")
        }
        return try inspectionResponse(job)
    }
    router.get("/engine/instances/{key}") { _, context -> Response in
        let key = context.parameters.get("key") ?? ""
        guard let instance = engine.inspection().instances.first(where: { $0.key == key }) else {
            return notFound("no process instance with key '\(key)'")
        }
        return try inspectionResponse(instance)
    }
    let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: port)),
        onServerRunning: { channel in
            portSink.yield(channel.localAddress?.port ?? 0)
            portSink.finish()
        },
        logger: logger
    )
    let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        defer { tasks.cancelAll() }
        var iterator = ports.makeAsyncIterator()
        guard let bound = await iterator.next(), bound > 0 else {
            throw TestGatewayError(message: "the test gateway's inspection endpoint did not start")
        }
        let result = try await body(TestGatewayInspectionServer(port: bound))
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}

/// A 200 answer with `value` as JSON.
private func inspectionResponse(_ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return Response(
        status: .ok,
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
    )
}

/// A 404 answer with a JSON error body.
private func notFound(_ message: String) -> Response {
    let body = (try? JSONEncoder().encode(["error": "not_found", "message": message])) ?? Data()
    return Response(
        status: .notFound,
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: body))
    )
}
