import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging

/// An in-process Zeebe gateway for tests: the `gateway_protocol.Gateway` gRPC service over a
/// real loopback HTTP/2 connection, backed by a small engine (``GatewayEngine``).
///
/// TEST SUPPORT ONLY: not a product, not a Zeebe replacement. It runs linear BPMN processes
/// (start event, service tasks, message catch events, end event) and has knobs to inject
/// errors, delays and token checks.
///
/// ```swift
/// try await withTestGateway { gateway in
///     var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
///     ...
///     #expect(gateway.engine.completedJobKeys.count == 2)
/// }
/// ```
public struct TestGateway: Sendable {
    /// The bound loopback port.
    public let port: Int
    /// The engine, for inspection (completed and failed jobs, incidents, instances).
    public let engine: GatewayEngine
    /// Fault injection and call counts.
    public let knobs: TestGatewayKnobs
}

/// Settings of a test gateway.
public struct TestGatewayConfiguration: Sendable {
    /// The port to bind on 127.0.0.1 (0: any free port).
    public var port: Int = 0
    /// PEM server certificate chain and key for TLS; plaintext when nil.
    public var tls: (certificateChainPEM: String, privateKeyPEM: String)?
    /// When set, calls need a bearer token from this issuer.
    public var tokenIssuer: TestTokenIssuer?
    /// When set, calls need `authorization: Basic <base64(username:password)>` with these credentials.
    public var basicAuth: (username: String, password: String)?
    /// Long polling when ActivateJobs sends requestTimeout 0.
    public var defaultLongPollingTimeout: Duration = .seconds(10)
    /// Wait when CreateProcessInstanceWithResult sends requestTimeout 0.
    public var defaultRequestTimeout: Duration = .seconds(15)

    /// Creates the default configuration: plaintext, no auth, any free port.
    public init() {}
}

/// Runs a test gateway on loopback for the duration of `body`, then stops it.
public func withTestGateway<Result: Sendable>(
    configuration: TestGatewayConfiguration = TestGatewayConfiguration(),
    _ body: (TestGateway) async throws -> Result
) async throws -> Result {
    let engine = GatewayEngine()
    let knobs = TestGatewayKnobs(
        defaultLongPollingTimeout: configuration.defaultLongPollingTimeout,
        defaultRequestTimeout: configuration.defaultRequestTimeout,
        tokenIssuer: configuration.tokenIssuer,
        basicAuth: configuration.basicAuth
    )
    let security: HTTP2ServerTransport.Posix.TransportSecurity
    if let tls = configuration.tls {
        security = .tls(
            certificateChain: [.bytes(Array(tls.certificateChainPEM.utf8), format: .pem)],
            privateKey: .bytes(Array(tls.privateKeyPEM.utf8), format: .pem)
        )
    } else {
        security = .plaintext
    }
    let transport = HTTP2ServerTransport.Posix(
        address: .ipv4(host: "127.0.0.1", port: configuration.port),
        transportSecurity: security
    )
    let server = GRPCServer(
        transport: transport,
        services: [TestGatewayService(engine: engine, knobs: knobs)],
        interceptors: [TestGatewayInterceptor(knobs: knobs)]
    )
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.serve() }
        let outcome: Swift.Result<Result, any Error>
        do {
            guard let address = try await transport.listeningAddress.ipv4 else {
                throw TestGatewayError(message: "the test gateway did not bind an IPv4 address")
            }
            outcome = .success(try await body(TestGateway(port: address.port, engine: engine, knobs: knobs)))
        } catch {
            outcome = .failure(error)
        }
        engine.closeAllStreams()
        server.beginGracefulShutdown()
        // Let serve() return by itself: cancelling it while the HTTP/2 multiplexer still holds a stream it
        // accepted makes NIO trap ("Deinited NIOAsyncWriter without calling finish()"), which crashed a test
        // run. Cancel only if it has not stopped within 10 s.
        group.addTask { try await Task.sleep(for: .seconds(10)) }
        _ = try? await group.next()
        group.cancelAll()
        try? await group.waitForAll()
        return try outcome.get()
    }
}
