import AffinityClient
import AffinityProtocol
import AffinityWorker
import Logging
import Synchronization
import Testing
import ZeebeClient

@Suite("OutcomeJobHandler")
struct OutcomeJobHandlerTests {
    static func job(
        key: Int64 = 2_251_799_813_685_300, instance: Int64 = 2_251_799_813_685_249, variables: String,
        retries: Int32 = 3
    )
        -> ZeebeJob
    {
        var activated = GatewayProtocol_ActivatedJob()
        activated.key = key
        activated.processInstanceKey = instance
        activated.type = "publish-outcome"
        activated.retries = retries
        activated.variables = variables
        return ZeebeJob(activated)
    }

    @Test func outcomeCarriesJobKeyInstanceKeyAndVariablesVerbatim() throws {
        let outcome = try OutcomeJobHandler.outcome(of: Self.job(variables: #"{"orderId":"42","total":9.5}"#))
        #expect(outcome.id == "2251799813685300")
        #expect(outcome.key == ProcessInstanceKey(2_251_799_813_685_249))
        #expect(outcome.variables == Array(#"{"orderId":"42","total":9.5}"#.utf8))
    }

    @Test func jobWithoutVariablesSendsAnEmptyObject() throws {
        let outcome = try OutcomeJobHandler.outcome(of: Self.job(variables: ""))
        #expect(outcome.variables == Array("{}".utf8))
    }

    @Test func invalidInstanceKeyIsABadRequest() {
        #expect(throws: OutcomeDeliveryError.self) {
            try OutcomeJobHandler.outcome(of: Self.job(instance: 0, variables: "{}"))
        }
    }

    @Test func deliveredOutcomeCompletesAndSendsWhatTheJobHeld() async throws {
        let sent = Mutex<[Outcome]>([])
        let handler = OutcomeJobHandler(
            deliveryTimeout: .seconds(3), failureBackoff: FailureBackoff(initial: .seconds(1)),
            logger: Logger(label: "test")
        ) { outcome, timeout in
            #expect(timeout == .seconds(3))
            sent.withLock { $0.append(outcome) }
            return .delivered
        }
        let result = try await handler.handle(Self.job(variables: #"{"a":1}"#))
        #expect(result == .complete)
        #expect(sent.withLock { $0.map(\.id) } == ["2251799813685300"])
    }

    @Test func unavailableServiceFailsTheJobWithItsRetriesAndNeverCompletes() async throws {
        let handler = OutcomeJobHandler(
            deliveryTimeout: .seconds(1), failureBackoff: FailureBackoff(initial: .seconds(2)),
            logger: Logger(label: "test"),
            random: { 0.5 }
        ) { outcome, _ in
            throw AffinityClientError(code: .unavailable, message: "not connected", processInstanceKey: outcome.key)
        }
        let result = try await handler.handle(Self.job(variables: "{}", retries: 5))
        guard case .fail(_, let retries, let backoff) = result else {
            Issue.record("expected fail, got \(result)")
            return
        }
        #expect(retries == 5)
        #expect(backoff == .seconds(2))
    }

    @Test func variablesThatAreNotAnObjectFailTheJobWithOneRetryLessWithoutSending() async throws {
        let calls = Atomic<Int>(0)
        let handler = OutcomeJobHandler(
            deliveryTimeout: .seconds(1), failureBackoff: FailureBackoff(initial: .zero), logger: Logger(label: "test")
        ) { _, _ in
            calls.add(1, ordering: .relaxed)
            return .delivered
        }
        let result = try await handler.handle(Self.job(variables: "[1,2]", retries: 3))
        #expect(calls.load(ordering: .relaxed) == 0)
        guard case .fail(let message, let retries, _) = result else {
            Issue.record("a job without a valid outcome must not complete: \(result)")
            return
        }
        #expect(retries == 2)
        #expect(message.contains("bad_request"))
    }

    @Test func cancellationIsRethrownSoTheJobIsNeitherCompletedNorFailed() async throws {
        let handler = OutcomeJobHandler(
            deliveryTimeout: .seconds(1), failureBackoff: FailureBackoff(initial: .zero), logger: Logger(label: "test")
        ) { _, _ in throw CancellationError() }
        await #expect(throws: CancellationError.self) {
            _ = try await handler.handle(Self.job(variables: "{}"))
        }
    }

    @Test func repeatedFailuresOfOneJobDoubleItsBackoffAndAnAckStartsOver() async throws {
        let acknowledge = Atomic<Bool>(false)
        let handler = OutcomeJobHandler(
            deliveryTimeout: .seconds(1), failureBackoff: FailureBackoff(initial: .seconds(1), maximum: .seconds(5)),
            logger: Logger(label: "test"), random: { 0.5 }
        ) { outcome, _ in
            if acknowledge.load(ordering: .relaxed) { return .parked }
            throw AffinityClientError(code: .timeout, message: "no answer", processInstanceKey: outcome.key)
        }
        var backoffs: [Duration] = []
        for _ in 0..<5 {
            guard case .fail(_, _, let backoff) = try await handler.handle(Self.job(variables: "{}", retries: 9)) else {
                Issue.record("expected a failed job")
                return
            }
            backoffs.append(backoff)
        }
        #expect(backoffs == [.seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
        // another job starts at the initial back-off
        let other = try await handler.handle(Self.job(key: 2_251_799_813_685_999, variables: "{}", retries: 9))
        #expect(other == .fail(message: Self.failureMessage(other), retries: 9, retryBackOff: .seconds(1)))
        // once acknowledged, the job is forgotten: a later failure starts over
        acknowledge.store(true, ordering: .relaxed)
        #expect(try await handler.handle(Self.job(variables: "{}", retries: 9)) == .complete)
        acknowledge.store(false, ordering: .relaxed)
        let again = try await handler.handle(Self.job(variables: "{}", retries: 9))
        #expect(again == .fail(message: Self.failureMessage(again), retries: 9, retryBackOff: .seconds(1)))
    }

    private static func failureMessage(_ outcome: JobOutcome) -> String {
        if case .fail(let message, _, _) = outcome { return message }
        return ""
    }
}
