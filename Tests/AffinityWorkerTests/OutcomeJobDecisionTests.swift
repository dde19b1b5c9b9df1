import AffinityClient
import AffinityProtocol
import AffinityWorker
import Testing
import ZeebeClient

@Suite("OutcomeJobDecision")
struct OutcomeJobDecisionTests {
    @Test(arguments: [DeliveryStatus.delivered, .parked])
    func acknowledgedOutcomeCompletesTheJob(_ status: DeliveryStatus) {
        let outcome = OutcomeJobDecision.jobOutcome(for: .success(status), retries: 3, backoff: .seconds(5))
        #expect(outcome == .complete)
    }

    @Test(arguments: [
        AffinityError.Code.unavailable, .timeout, .badRequest, .tooLarge, .unauthorized, .forbidden,
    ])
    func anyErrorFailsWithOneRetryLessAndTheBackoff(_ code: AffinityError.Code) throws {
        let error = AffinityClientError(code: code, message: "refused")
        let outcome = OutcomeJobDecision.jobOutcome(for: .failure(error), retries: 3, backoff: .seconds(7))
        guard case .fail(let message, let retries, let backoff) = outcome else {
            Issue.record("expected a failed job, got \(outcome)")
            return
        }
        #expect(retries == 2)
        #expect(backoff == .seconds(7))
        #expect(message.contains(code.rawValue))
    }

    @Test(arguments: [(Int32(1), Int32(0)), (0, 0), (10, 9)])
    func retriesNeverGoBelowZero(_ retries: Int32, _ expected: Int32) {
        let error = AffinityClientError(code: .unavailable, message: "down")
        let outcome = OutcomeJobDecision.jobOutcome(for: .failure(error), retries: retries, backoff: .zero)
        #expect(
            outcome
                == .fail(
                    message: "outcome not acknowledged by the affinity service: \(error)", retries: expected,
                    retryBackOff: .zero))
    }
}
