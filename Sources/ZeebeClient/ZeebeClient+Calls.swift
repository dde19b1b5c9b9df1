import GRPCCore
import Logging

extension ZeebeClient {
    /// Whether a call may be repeated without a second effect; only those are retried on
    /// RESOURCE_EXHAUSTED and UNAVAILABLE.
    enum Idempotency {
        case idempotent
        case notIdempotent
    }

    /// Runs one gateway call with the bearer token, the UNAUTHENTICATED refresh and, for
    /// idempotent calls, the back-off retries. Any error comes out as a ``ZeebeError``.
    func perform<Result: Sendable>(
        _ name: String,
        _ idempotency: Idempotency,
        timeout: Duration? = nil,
        _ call: (_ metadata: Metadata, _ options: CallOptions) async throws -> Result
    ) async throws -> Result {
        var options = CallOptions.defaults
        options.timeout = timeout ?? configuration.defaultCallTimeout
        var attempt = 1
        var delay = Duration.zero
        var refreshedToken = false
        var rejectedToken: String?
        while true {
            var metadata = Metadata()
            var token: String?
            if let tokens {
                token = try await tokens.token(replacing: rejectedToken)
                metadata.addString("Bearer \(token!)", forKey: "authorization")
            } else if let basic = configuration.basicAuth {
                metadata.addString(basic.authorizationHeader, forKey: "authorization")
            }
            logger.trace("calling the gateway", metadata: ["zeebe.call": "\(name)", "zeebe.attempt": "\(attempt)"])
            do {
                return try await call(metadata, options)
            } catch {
                let zeebeError = ZeebeError.from(error)
                if zeebeError.code == .unauthenticated, tokens != nil, !refreshedToken {
                    refreshedToken = true
                    rejectedToken = token
                    logger.debug(
                        "gateway rejected the token; refreshing it once",
                        metadata: ["zeebe.call": "\(name)"]
                    )
                    continue
                }
                guard idempotency == .idempotent, zeebeError.isRetryable, attempt < configuration.maxAttempts else {
                    throw zeebeError
                }
                delay = configuration.retryBackoff.next(after: delay)
                logger.debug(
                    "retrying after a retryable error",
                    metadata: [
                        "zeebe.call": "\(name)", "zeebe.error": "\(zeebeError.code)",
                        "zeebe.attempt": "\(attempt)", "zeebe.delay": "\(delay)",
                    ]
                )
                try await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }
}
