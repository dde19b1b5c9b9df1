import Foundation
import GRPCCore
import Logging

extension ZeebeClient {
    /// Which failures of a call are retried, how often and until when.
    struct RetryPolicy: Sendable {
        /// The codes that are retried (besides the one UNAUTHENTICATED retry with a new token).
        var codes: Set<ZeebeError.Code>
        /// At most this many attempts (`nil`: ``ZeebeClientConfiguration/maxAttempts``).
        var maxAttempts: Int?
        /// No retry starts after this instant (`nil`: the call's own deadline).
        var deadline: ContinuousClock.Instant?

        /// Idempotent calls: RESOURCE_EXHAUSTED and UNAVAILABLE, ``ZeebeClientConfiguration/maxAttempts``
        /// attempts within the call's deadline.
        static let idempotent = RetryPolicy(codes: [.resourceExhausted, .unavailable])
        /// Calls that must not be applied twice but that a broker under back-pressure refused before
        /// processing them (creating instances, publishing without a message id): RESOURCE_EXHAUSTED
        /// only, within the call's deadline. UNAVAILABLE is not retried: the command may have been applied.
        static let backPressure = RetryPolicy(codes: [.resourceExhausted])
        /// Never retried (ActivateJobs, StreamActivatedJobs: a lost answer leaves jobs locked).
        static let never = RetryPolicy(codes: [])

        /// CompleteJob, FailJob, ThrowError: RESOURCE_EXHAUSTED and UNAVAILABLE (a leader change) for
        /// ``ZeebeClientConfiguration/jobCommandRetryTimeout``, never past the job's deadline.
        static func jobCommand(jobDeadline: Date?, timeout: Duration) -> RetryPolicy {
            var deadline = ContinuousClock.now + timeout
            if let jobDeadline {
                let remaining = Duration.milliseconds(Int64(jobDeadline.timeIntervalSinceNow * 1000))
                deadline = min(deadline, ContinuousClock.now + max(remaining, .zero))
            }
            return RetryPolicy(codes: [.resourceExhausted, .unavailable], maxAttempts: .max, deadline: deadline)
        }

        init(codes: Set<ZeebeError.Code>, maxAttempts: Int? = nil, deadline: ContinuousClock.Instant? = nil) {
            self.codes = codes
            self.maxAttempts = maxAttempts
            self.deadline = deadline
        }
    }

    /// The least time a retry must have before the call's deadline; with less left, the retried error is thrown.
    static let shortestRetryAttempt = Duration.milliseconds(100)

    /// Runs one gateway call with the bearer token, the UNAUTHENTICATED refresh and the retries of
    /// `retry` (exponential back-off with jitter). Any error comes out as a ``ZeebeError``.
    ///
    /// - Parameter timeout: the gRPC deadline of the call (``ZeebeClientConfiguration/defaultCallTimeout``
    ///   by default). Unless `retry` has a deadline of its own, retries happen within it: every attempt
    ///   gets what is left of it, and no retry starts after it.
    func perform<Result: Sendable>(
        _ name: String,
        _ retry: RetryPolicy,
        timeout: Duration? = nil,
        _ call: (_ metadata: Metadata, _ options: CallOptions) async throws -> Result
    ) async throws -> Result {
        let callTimeout = timeout ?? configuration.defaultCallTimeout
        let deadline = retry.deadline ?? (ContinuousClock.now + callTimeout)
        let maxAttempts = retry.maxAttempts ?? configuration.maxAttempts
        var attempt = 1
        var delay = Duration.zero
        var refreshedToken = false
        var rejectedToken: String?
        while true {
            var options = CallOptions.defaults
            options.maxResponseMessageBytes = configuration.maxInboundMessageSize
            // grpc-swift-nio-transport 2 bounds inbound messages by this one (4 MiB when unset)
            options.maxRequestMessageBytes = configuration.maxInboundMessageSize
            // the first attempt gets the whole call timeout; a retry what is left before the deadline
            options.timeout = attempt == 1 ? callTimeout : min(callTimeout, deadline - ContinuousClock.now)
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
                guard retry.codes.contains(zeebeError.code), attempt < maxAttempts else {
                    throw zeebeError
                }
                delay = configuration.retryBackoff.next(after: delay)
                // a retry must start, and have time to run, before the deadline: one left with only a few
                // milliseconds would end in DEADLINE_EXCEEDED and hide the error that was retried
                guard ContinuousClock.now + delay + Self.shortestRetryAttempt < deadline else {
                    throw zeebeError
                }
                let level: Logger.Level = zeebeError.code == .resourceExhausted ? .trace : .debug
                logger.log(
                    level: level,
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
