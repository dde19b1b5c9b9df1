public import AffinityClient
public import AffinityProtocol
import CoreMetrics
public import Logging
public import ZeebeClient

/// Handles one `publish-outcome` job: sends its variables as the outcome of its process instance
/// (id = job key, key = process instance key) and decides from the answer (``OutcomeJobDecision``).
public struct OutcomeJobHandler: Sendable {
    /// Sends one outcome and waits for the service's answer (``OutcomePublisher/publish(_:timeout:)``).
    public typealias Publish = @Sendable (Outcome, Duration) async throws -> DeliveryStatus

    let publish: Publish
    let deliveryTimeout: Duration
    let failureBackoff: FailureBackoff
    let attempts = FailedJobAttempts()
    let random: @Sendable () -> Double
    let logger: Logger

    /// Creates a handler that publishes through `publisher`.
    public init(
        publisher: OutcomePublisher, deliveryTimeout: Duration, failureBackoff: FailureBackoff, logger: Logger
    ) {
        self.init(
            deliveryTimeout: deliveryTimeout, failureBackoff: failureBackoff, logger: logger,
            publish: { try await publisher.publish($0, timeout: $1) })
    }

    /// Creates a handler that publishes with `publish`.
    ///
    /// - Parameter random: values in `0..<1` that place each back-off within its jitter range.
    public init(
        deliveryTimeout: Duration, failureBackoff: FailureBackoff, logger: Logger,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }, publish: @escaping Publish
    ) {
        self.publish = publish
        self.deliveryTimeout = deliveryTimeout
        self.failureBackoff = failureBackoff
        self.random = random
        self.logger = logger
    }

    /// The outcome a job delivers: id = job key, key = process instance key, variables = the job's variables.
    /// - Throws: ``OutcomeDeliveryError`` `bad_request` for a non-positive key or variables that are not a JSON object.
    public static func outcome(of job: ZeebeJob) throws(OutcomeDeliveryError) -> Outcome {
        guard let key = ProcessInstanceKey(job.processInstanceKey) else {
            throw OutcomeDeliveryError(
                code: .badRequest,
                message: "job \(job.key) has an invalid process instance key \(job.processInstanceKey)")
        }
        let json = job.variables.json.isEmpty ? "{}" : job.variables.json
        do {
            return try Outcome(id: String(job.key), key: key, variables: Array(json.utf8))
        } catch {
            throw OutcomeDeliveryError(
                code: error.code, message: "job \(job.key) does not make a valid outcome", cause: error)
        }
    }

    /// Delivers the job's outcome and returns what to do with the job. Rethrows `CancellationError`
    /// (the worker is stopping: the job is left to its timeout, neither completed nor failed).
    public func handle(_ job: ZeebeJob) async throws -> JobOutcome {
        var logger = logger
        logger[metadataKey: "zeebe.job"] = "\(job.key)"
        logger[metadataKey: "affinity.key"] = "\(job.processInstanceKey)"
        let result: Result<DeliveryStatus, any Error>
        do {
            let outcome = try Self.outcome(of: job)
            result = .success(try await publish(outcome, deliveryTimeout))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let status):
            attempts.forget(job.key)
            logger.trace("outcome acknowledged", metadata: ["affinity.status": "\(status.rawValue)"])
            return OutcomeJobDecision.jobOutcome(for: result, retries: job.retries, backoff: .zero)
        case .failure(let error):
            let failures = attempts.recordFailure(of: job.key)
            let backoff = failureBackoff.delay(afterFailure: failures, random: random())
            logger.debug(
                "outcome not acknowledged, failing the job",
                metadata: [
                    "affinity.error": "\(error)", "zeebe.job.failures": "\(failures)",
                    "zeebe.job.retry_backoff": "\(backoff)",
                ])
            return OutcomeJobDecision.jobOutcome(for: result, retries: job.retries, backoff: backoff)
        }
    }
}
