import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A client of the Zeebe (Camunda 8) gateway over gRPC.
///
/// The client owns one HTTP/2 connection pool. Run it as a `Service` (in a `ServiceGroup`),
/// or scope it with ``withZeebeClient(configuration:logger:_:)``:
///
/// ```swift
/// try await withZeebeClient(configuration: try .fromEnvironment()) { client in
///     let deployment = try await client.deployResource(name: "order.bpmn", content: bpmnData)
///     let instance = try await client.createProcessInstance(
///         bpmnProcessId: "order", variables: try ZeebeVariables(["orderId": "o-1"]))
///     try await client.publishMessage(name: "paid", correlationKey: "o-1", timeToLive: .seconds(60))
/// }
/// ```
///
/// Errors are ``ZeebeError``s. Calls marked idempotent in their documentation are retried with
/// exponential back-off and jitter on RESOURCE_EXHAUSTED and UNAVAILABLE; the others
/// (creating instances, publishing a message without an id) are not, because a retry could
/// apply them twice. Every call with credentials sends `authorization: Bearer <token>` and,
/// on UNAUTHENTICATED, fetches a new token and tries once more.
public final class ZeebeClient: Service, Sendable {
    /// The configuration the client was made with.
    public let configuration: ZeebeClientConfiguration
    let grpcClient: GRPCClient<HTTP2ClientTransport.Posix>
    let gateway: GatewayProtocol_Gateway.Client<HTTP2ClientTransport.Posix>
    let tokens: OAuthTokenProvider?
    let logger: Logger

    /// Creates a client; it connects once ``run()`` is running.
    /// - Throws: ``ZeebeError`` with code `INVALID_CONFIGURATION` when the transport cannot be set up.
    public init(configuration: ZeebeClientConfiguration, logger: Logger = Logger(label: "zeebe.client")) throws {
        self.configuration = configuration
        self.logger = logger
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        switch configuration.transportSecurity {
        case .plaintext:
            security = .plaintext
        case .tls(let caPath):
            security = .tls { tls in
                if let caPath {
                    tls.trustRoots = .certificates([.file(path: caPath, format: .pem)])
                }
            }
        }
        var transportConfig = HTTP2ClientTransport.Posix.Config.defaults
        transportConfig.http2.authority = configuration.overrideAuthority
        transportConfig.http2.maxFrameSize = 1 << 20
        // 1 MiB per stream, as grpc-java (the Java client): a job stream whose worker stops reading holds
        // at most that much of pushed jobs in buffers, not the transport's default 8 MiB
        transportConfig.http2.targetWindowSize = 1 << 20
        transportConfig.connection.keepalive = configuration.keepAlive.map {
            // pings only while calls are open: a gateway refuses pings on an idle connection by default
            .init(time: $0, timeout: .seconds(20), allowWithoutCalls: false)
        }
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: Self.target(host: configuration.host, port: configuration.port),
                transportSecurity: security,
                config: transportConfig
            )
            self.grpcClient = GRPCClient(transport: transport)
        } catch {
            throw ZeebeError(code: .invalidConfiguration, message: "cannot set up the gRPC transport", cause: error)
        }
        self.gateway = GatewayProtocol_Gateway.Client(wrapping: grpcClient)
        self.tokens = configuration.credentials.map { OAuthTokenProvider(credentials: $0, logger: logger) }
    }

    /// A literal IPv4 or IPv6 address is connected to as such: as a DNS target its text would become the
    /// TLS server name (SNI), where addresses are not allowed, and the handshake would fail. Without a
    /// server name the gateway's certificate is checked against the address (an IP SAN).
    static func target(host: String, port: Int) -> any ResolvableTarget {
        var ipv4 = in_addr()
        var ipv6 = in6_addr()
        if inet_pton(AF_INET, host, &ipv4) == 1 { return .ipv4(address: host, port: port) }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if inet_pton(AF_INET6, bare, &ipv6) == 1 { return .ipv6(address: bare, port: port) }
        return .dns(host: host, port: port)
    }

    /// Runs the connections until a graceful shutdown (or ``shutdown()``); in-flight calls finish first.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await grpcClient.runConnections()
        } onGracefulShutdown: {
            self.grpcClient.beginGracefulShutdown()
        }
    }

    /// Stops accepting new calls and lets ``run()`` return once in-flight calls finish.
    public func shutdown() {
        grpcClient.beginGracefulShutdown()
    }
}

/// Runs `body` with a connected client and shuts the client down afterwards.
///
/// ```swift
/// let topology = try await withZeebeClient(configuration: configuration) { try await $0.topology() }
/// ```
public func withZeebeClient<Result: Sendable>(
    configuration: ZeebeClientConfiguration,
    logger: Logger = Logger(label: "zeebe.client"),
    _ body: (ZeebeClient) async throws -> Result
) async throws -> Result {
    let client = try ZeebeClient(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.grpcClient.runConnections() }
        defer { client.shutdown() }
        let result = try await body(client)
        client.shutdown()
        try await group.waitForAll()
        return result
    }
}
