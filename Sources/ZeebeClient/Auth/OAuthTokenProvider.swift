import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Fetches OAuth2 client-credentials tokens from the token endpoint and caches them.
///
/// A token is reused until `refreshLeeway` before it expires, then replaced ahead of its expiry. A
/// refresh that fails while the cached token is still valid keeps that token (and tries again a little
/// later); one token request is tried up to three times, with back-off, on a transport error, a 5xx or
/// a 429 answer. When the gateway rejects a token (UNAUTHENTICATED), ``token(replacing:)`` with that
/// token fetches a new one.
public actor OAuthTokenProvider {
    private let credentials: OAuthCredentials
    private let httpClient: HTTPClient
    private let logger: Logger
    private var cached: (token: String, refreshAt: ContinuousClock.Instant, expiresAt: ContinuousClock.Instant)?
    /// Attempts of one token request (transport errors, 5xx and 429 are retried).
    static let maxFetchAttempts = 3
    /// The back-off between those attempts, and before the next refresh after a failed one.
    static let fetchBackoff = ExponentialBackoff(
        minimum: .milliseconds(200), maximum: .seconds(5), multiplier: 2, jitter: 0.1)
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
        let previous = cached
        // One request at a time: concurrent callers wait for the request in flight.
        if isFetching {
            return try await withCheckedThrowingContinuation { waiters.append($0) }
        }
        isFetching = true
        let result: Result<String, any Error>
        do {
            let (token, lifetime) = try await fetchWithRetries()
            let now = ContinuousClock.now
            let usable = max(lifetime - credentials.refreshLeeway, lifetime / 2)
            cached = (token, now + usable, now + lifetime)
            logger.debug("fetched an OAuth token", metadata: ["zeebe.token.lifetime": "\(lifetime)"])
            result = .success(token)
        } catch {
            if let previous, previous.token != rejected, ContinuousClock.now < previous.expiresAt {
                // the token still works: keep it, try the refresh again shortly (never past its expiry)
                let now = ContinuousClock.now
                let retryAt = now + min(Self.fetchBackoff.maximum, (previous.expiresAt - now) / 2)
                cached = (previous.token, retryAt, previous.expiresAt)
                logger.warning(
                    "refreshing the OAuth token failed; using the current one until it expires",
                    metadata: ["zeebe.error": "\(error)"])
                result = .success(previous.token)
            } else {
                result = .failure(error)
            }
        }
        isFetching = false
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.resume(with: result) }
        return try result.get()
    }

    /// One token request, tried up to ``maxFetchAttempts`` times on transient failures.
    private func fetchWithRetries() async throws -> (String, Duration) {
        var delay = Duration.zero
        var attempt = 1
        while true {
            do {
                return try await fetch()
            } catch {
                guard let failure = error as? TokenFetchError else { throw error }
                guard failure.isTransient, attempt < Self.maxFetchAttempts else { throw failure.error }
                delay = Self.fetchBackoff.next(after: delay)
                logger.debug(
                    "token request failed; retrying",
                    metadata: [
                        "zeebe.error": "\(failure.error)", "zeebe.attempt": "\(attempt)", "zeebe.delay": "\(delay)",
                    ])
                try await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }

    /// A failed token request, and whether another attempt may succeed.
    private struct TokenFetchError: Error {
        var error: ZeebeError
        var isTransient: Bool
    }

    /// One token request; failures are ``TokenFetchError``s.
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
            (status, responseBody) = try await execute(request, timeout: timeout)
        } catch {
            let failure = ZeebeError(
                code: .authenticationFailed,
                message: "token request to \(credentials.authorizationServerURL) failed",
                cause: error
            )
            throw TokenFetchError(error: failure, isTransient: true)
        }
        let text = String(buffer: responseBody)
        guard (200..<300).contains(status.code) else {
            let failure = ZeebeError(
                code: .authenticationFailed,
                message: "token endpoint answered \(status.code): \(text.prefix(200))"
            )
            throw TokenFetchError(error: failure, isTransient: status.code >= 500 || status.code == 429)
        }
        do {
            return try Self.parseTokenResponse(text)
        } catch {
            throw TokenFetchError(error: ZeebeError.from(error), isTransient: false)
        }
    }

    /// Sends the token request, through a client that trusts ``OAuthCredentials/caCertificatePath``
    /// when one is set (made for this request: token requests are rare).
    private func execute(
        _ request: HTTPClientRequest, timeout: TimeAmount
    ) async throws -> (HTTPResponseStatus, ByteBuffer) {
        guard let caPath = credentials.caCertificatePath else {
            let response = try await httpClient.execute(request, timeout: timeout)
            return (response.status, try await response.body.collect(upTo: 1 << 20))
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caPath)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            let response = try await client.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            try await client.shutdown()
            return (response.status, body)
        } catch {
            try? await client.shutdown()
            throw error
        }
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
