import AffinityClient
public import AffinityProtocol
public import ZeebeClient

/// What happens to a `publish-outcome` job once the affinity service answered (or did not): the
/// I/O-free rule at the heart of the worker.
///
/// - `delivered` or `parked`: complete the job (the outcome is safe in the service).
/// - a transient failure (not connected, connection lost, `unavailable`, `timeout`, anything without a
///   permanent code): fail the job with its retries **unchanged** and a back-off, so Zeebe hands it out
///   again later. An outage of the affinity service delays outcomes but raises no incident.
/// - a permanent refusal (``permanentCodes``: `bad_request`, `too_large`, `forbidden`, `conflict`): fail
///   the job with `retries - 1` and the refusal in the error message, so that a job that can never be
///   delivered ends in an incident an operator sees.
///
/// The job is never completed without an acknowledgement.
public enum OutcomeJobDecision {
    /// The refusals that a retry cannot change: they use up one of the job's retries.
    public static let permanentCodes: Set<AffinityError.Code> = [.badRequest, .tooLarge, .forbidden, .conflict]

    /// The stable code of a delivery error, when it has one.
    public static func code(of error: any Error) -> AffinityError.Code? {
        switch error {
        case let error as AffinityClientError: return error.code
        case let error as OutcomeDeliveryError: return error.code
        case let error as AffinityError: return error.code
        default: return nil
        }
    }

    /// Whether `error` is a permanent refusal (one of ``permanentCodes``).
    public static func isPermanent(_ error: any Error) -> Bool {
        code(of: error).map(permanentCodes.contains) ?? false
    }

    /// The job outcome for a delivery `result` of a job that had `retries` left.
    ///
    /// - Parameters:
    ///   - result: the service's answer, or the error that prevented one.
    ///   - retries: the job's retries when it was activated.
    ///   - backoff: the retry back-off for a failed job.
    public static func jobOutcome(
        for result: Result<DeliveryStatus, any Error>, retries: Int32, backoff: Duration
    ) -> JobOutcome {
        switch result {
        case .success(.delivered), .success(.parked):
            return .complete
        case .failure(let error) where isPermanent(error):
            return .fail(
                message: "outcome refused by the affinity service: \(error)",
                retries: max(retries - 1, 0), retryBackOff: backoff)
        case .failure(let error):
            return .fail(
                message: "outcome not acknowledged by the affinity service (transient, retries kept): \(error)",
                retries: max(retries, 0), retryBackOff: backoff)
        }
    }
}
