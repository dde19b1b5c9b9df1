import Foundation
import Hummingbird
import Logging
import NIOCore
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
}

/// The token requests a test OAuth server received.
final class TokenRequestLog: Sendable {
    let forms = Mutex<[[String: String]]>([])
}

/// Runs a ``TestOAuthServer`` on a free loopback port for the duration of `body`.
public func withTestOAuthServer<Result: Sendable>(
    issuer: TestTokenIssuer,
    logger: Logger = Logger(label: "zeebe.test-oauth"),
    _ body: (TestOAuthServer) async throws -> Result
) async throws -> Result {
    let requests = TokenRequestLog()
    let router = Router()
    router.post("/oauth/token") { request, _ -> Response in
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        let form = parseForm(String(buffer: buffer))
        requests.forms.withLock { $0.append(form) }
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
    let app = Application(
        router: router,
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
        let server = TestOAuthServer(url: "http://127.0.0.1:\(port)/oauth/token", issuer: issuer, requests: requests)
        let result = try await body(server)
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
