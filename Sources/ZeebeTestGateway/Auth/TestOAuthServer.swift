import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A test OAuth2 token endpoint on loopback: `POST /oauth/token` with a form-encoded
/// client-credentials body answers `{"access_token", "token_type", "expires_in"}`.
/// Test support only.
public final class TestOAuthServer: Sendable {
    /// The token URL, e.g. `http://127.0.0.1:PORT/oauth/token`.
    public let url: String
    /// The issuer whose tokens the test gateway accepts.
    public let issuer: TestTokenIssuer
    let requests: TokenRequestLog

    init(url: String, issuer: TestTokenIssuer, requests: TokenRequestLog) {
        self.url = url
        self.issuer = issuer
        self.requests = requests
    }

    /// How many token requests arrived (valid or not).
    public var requestCount: Int { requests.forms.withLock { $0.count } }
    /// The form fields of every token request, in order.
    public var receivedForms: [[String: String]] { requests.forms.withLock { $0 } }

    /// The next `count` token requests are answered with `status` (503 by default), as an identity
    /// provider that is restarting.
    public func failNextRequests(_ count: Int, status: HTTPResponse.Status = .serviceUnavailable) {
        requests.failures.withLock { $0.append(contentsOf: Array(repeating: status, count: count)) }
    }
}

/// The token requests a test OAuth server received, and the failures it still has to answer with.
final class TokenRequestLog: Sendable {
    let forms = Mutex<[[String: String]]>([])
    let failures = Mutex<[HTTPResponse.Status]>([])
}

/// Runs a ``TestOAuthServer`` on a free loopback port for the duration of `body`; over HTTPS with the
/// PEM certificate chain and key in `tls` (e.g. from ``TestCertificateAuthority``).
public func withTestOAuthServer<Result: Sendable>(
    issuer: TestTokenIssuer,
    tls: (certificateChainPEM: String, privateKeyPEM: String)? = nil,
    logger: Logger = Logger(label: "zeebe.test-oauth"),
    _ body: (TestOAuthServer) async throws -> Result
) async throws -> Result {
    let requests = TokenRequestLog()
    let router = Router()
    router.post("/oauth/token") { request, _ -> Response in
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        let form = parseForm(String(buffer: buffer))
        requests.forms.withLock { $0.append(form) }
        let failure = requests.failures.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        if let failure {
            return Response(
                status: failure, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error":"temporarily_unavailable"}"#)))
        }
        guard form["grant_type"] == "client_credentials", form["client_id"] == issuer.clientId,
            form["client_secret"] == issuer.clientSecret
        else {
            return Response(
                status: .unauthorized,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error":"invalid_client"}"#))
            )
        }
        let token = issuer.issue()
        let json =
            #"{"access_token":"\#(token)","token_type":"Bearer","expires_in":\#(issuer.tokenLifetime.components.seconds)}"#
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: json))
        )
    }
    let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
    var server = HTTPServerBuilder.http1()
    if let tls {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(tls.certificateChainPEM.utf8)).map {
                .certificate($0)
            },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(tls.privateKeyPEM.utf8), format: .pem)))
        server = try .tls(.http1(), tlsConfiguration: configuration)
    }
    let app = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
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
        guard let port = await iterator.next(), port > 0 else {
            throw TestGatewayError(message: "the test OAuth server did not start")
        }
        let scheme = tls == nil ? "http" : "https"
        let oauth = TestOAuthServer(
            url: "\(scheme)://127.0.0.1:\(port)/oauth/token", issuer: issuer, requests: requests)
        let result = try await body(oauth)
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}

/// Parses an `application/x-www-form-urlencoded` body.
func parseForm(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in text.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1).map {
            String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
        }
        if let key = parts.first { fields[key] = parts.count > 1 ? parts[1] : "" }
    }
    return fields
}

/// A failure of the test-support servers themselves.
public struct TestGatewayError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    /// What went wrong.
    public var description: String { message }
}
