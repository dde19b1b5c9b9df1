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

    /// An outage of the service (no connection, connection lost, no answer in time) must not use up
    /// retries: 3 retries and a doubling back-off would otherwise raise incidents after a 12 s outage.
    @Test(arguments: [AffinityError.Code.unavailable, .timeout, .unauthorized, .internal, .unknownType])
    func transientErrorFailsWithTheRetriesUnchangedAndTheBackoff(_ code: AffinityError.Code) throws {
        let error = AffinityClientError(code: code, message: "not now")
        let outcome = OutcomeJobDecision.jobOutcome(for: .failure(error), retries: 3, backoff: .seconds(7))
        guard case .fail(let message, let retries, let backoff) = outcome else {
            Issue.record("expected a failed job, got \(outcome)")
            return
        }
        #expect(retries == 3)
        #expect(backoff == .seconds(7))
        #expect(message.contains("outcome not acknowledged by the affinity service"))
        #expect(message.contains(code.rawValue))
    }

    @Test(arguments: [AffinityError.Code.badRequest, .tooLarge, .forbidden, .conflict])
    func permanentRefusalFailsWithOneRetryLessAndTheRefusalInTheMessage(_ code: AffinityError.Code) throws {
        let error = AffinityClientError(code: code, message: "refused for good", outcomeID: "7")
        let outcome = OutcomeJobDecision.jobOutcome(for: .failure(error), retries: 3, backoff: .seconds(7))
        guard case .fail(let message, let retries, let backoff) = outcome else {
            Issue.record("expected a failed job, got \(outcome)")
            return
        }
        #expect(retries == 2)
        #expect(backoff == .seconds(7))
        #expect(message.contains("outcome refused by the affinity service"))
        #expect(message.contains(code.rawValue))
        #expect(message.contains("refused for good"))
    }

    @Test func anInvalidOutcomeIsPermanentAndAnUncodedErrorIsTransient() {
        #expect(OutcomeJobDecision.isPermanent(OutcomeDeliveryError(code: .badRequest, message: "bad key")))
        #expect(!OutcomeJobDecision.isPermanent(CancellationError()))
        struct SocketError: Error {}
        #expect(!OutcomeJobDecision.isPermanent(SocketError()))
    }

    @Test(arguments: [(Int32(1), Int32(0)), (0, 0), (10, 9)])
    func retriesNeverGoBelowZero(_ retries: Int32, _ expected: Int32) {
        let error = AffinityClientError(code: .badRequest, message: "bad")
        let outcome = OutcomeJobDecision.jobOutcome(for: .failure(error), retries: retries, backoff: .zero)
        #expect(
            outcome
                == .fail(
                    message: "outcome refused by the affinity service: \(error)", retries: expected,
                    retryBackOff: .zero))
    }
}
