import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Fetches OAuth2 client-credentials tokens from the token endpoint and caches them.
///
/// A token is reused until `refreshLeeway` before it expires. When the gateway rejects a token
/// (UNAUTHENTICATED), ``token(replacing:)`` with that token fetches a new one.
public actor OAuthTokenProvider {
    private let credentials: OAuthCredentials
    private let httpClient: HTTPClient
    private let logger: Logger
    private var cached: (token: String, refreshAt: ContinuousClock.Instant)?
    private var isFetching = false
    private var waiters: [CheckedContinuation<String, any Error>] = []

    /// Creates a provider.
    /// - Parameters:
    ///   - credentials: The client credentials and token endpoint.
    ///   - httpClient: The HTTP client for the token requests (the shared one by default).
    ///   - logger: Where to log token refreshes.
    public init(credentials: OAuthCredentials, httpClient: HTTPClient = .shared, logger: Logger) {
        self.credentials = credentials
        self.httpClient = httpClient
        self.logger = logger
    }

    /// A valid access token: the cached one, or a fresh one from the token endpoint.
    /// - Parameter rejected: a token the gateway refused; if it is the cached one, it is dropped first.
    /// - Throws: ``ZeebeError`` with code `AUTHENTICATION_FAILED` when the endpoint fails.
    public func token(replacing rejected: String? = nil) async throws -> String {
        if let rejected, cached?.token == rejected {
            cached = nil
        }
        if let cached, ContinuousClock.now < cached.refreshAt {
            return cached.token
        }
        // One request at a time: concurrent callers wait for the request in flight.
        if isFetching {
            return try await withCheckedThrowingContinuation { waiters.append($0) }
        }
        isFetching = true
        let result: Result<String, any Error>
        do {
            let (token, lifetime) = try await fetch()
            let usable = max(lifetime - credentials.refreshLeeway, lifetime / 2)
            cached = (token, ContinuousClock.now + usable)
            logger.debug("fetched an OAuth token", metadata: ["zeebe.token.lifetime": "\(lifetime)"])
            result = .success(token)
        } catch {
            result = .failure(error)
        }
        isFetching = false
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.resume(with: result) }
        return try result.get()
    }

    private func fetch() async throws -> (String, Duration) {
        var fields = [
            ("grant_type", "client_credentials"),
            ("client_id", credentials.clientId),
            ("client_secret", credentials.clientSecret),
        ]
        if let audience = credentials.audience { fields.append(("audience", audience)) }
        if let scope = credentials.scope { fields.append(("scope", scope)) }
        if let resource = credentials.resource { fields.append(("resource", resource)) }
        let body = fields.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&")

        var request = HTTPClientRequest(url: credentials.authorizationServerURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))

        let responseBody: ByteBuffer
        let status: HTTPResponseStatus
        do {
            let timeout = TimeAmount.nanoseconds(Int64(credentials.requestTimeout.seconds * 1e9))
            let response = try await httpClient.execute(request, timeout: timeout)
            status = response.status
            responseBody = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw ZeebeError(
                code: .authenticationFailed,
                message: "token request to \(credentials.authorizationServerURL) failed",
                cause: error
            )
        }
        let text = String(buffer: responseBody)
        guard (200..<300).contains(status.code) else {
            throw ZeebeError(
                code: .authenticationFailed,
                message: "token endpoint answered \(status.code): \(text.prefix(200))"
            )
        }
        return try Self.parseTokenResponse(text)
    }

    /// Parses `{"access_token": ..., "expires_in": ...}`; `expires_in` may be a number or a string.
    static func parseTokenResponse(_ text: String) throws -> (String, Duration) {
        guard
            let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let token = object["access_token"] as? String, !token.isEmpty
        else {
            throw ZeebeError(code: .authenticationFailed, message: "token endpoint answered without an access_token")
        }
        var seconds = 3600.0
        if let number = object["expires_in"] as? NSNumber {
            seconds = number.doubleValue
        } else if let string = object["expires_in"] as? String, let number = Double(string) {
            seconds = number
        }
        return (token, .milliseconds(Int64(max(seconds, 0) * 1000)))
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
