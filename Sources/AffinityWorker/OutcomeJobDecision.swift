public import AffinityProtocol
public import ZeebeClient

/// What happens to a `publish-outcome` job once the affinity service answered (or did not): the
/// I/O-free rule at the heart of the worker.
///
/// - `delivered` or `parked`: complete the job (the outcome is safe in the service).
/// - anything else (not connected, timeout, refused, connection lost): fail the job with
///   `retries - 1` and a back-off, so Zeebe hands it out again later. Never complete it.
public enum OutcomeJobDecision {
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
        case .failure(let error):
            return .fail(
                message: "outcome not acknowledged by the affinity service: \(error)",
                retries: max(retries - 1, 0), retryBackOff: backoff)
        }
    }
}
