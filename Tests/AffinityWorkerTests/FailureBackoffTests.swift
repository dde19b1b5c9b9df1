import Testing

@testable import AffinityWorker

@Suite("FailureBackoff")
struct FailureBackoffTests {
    @Test func nominalBackoffDoublesPerFailureUpToTheMaximum() {
        let policy = FailureBackoff(initial: .milliseconds(500), maximum: .seconds(3), jitter: 0.2)
        let delays = (1...6).map { policy.delay(afterFailure: $0, random: 0.5) }
        #expect(delays == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(3), .seconds(3), .seconds(3)])
    }

    @Test func jitterSpreadsAroundTheNominalValueAndNeverPassesTheMaximum() {
        let policy = FailureBackoff(initial: .seconds(1), maximum: .seconds(10), jitter: 0.2)
        #expect(policy.delay(afterFailure: 2, random: 0) == .milliseconds(1600))
        #expect(policy.delay(afterFailure: 2, random: 1) == .milliseconds(2400))
        #expect(policy.delay(afterFailure: 10, random: 1) == .seconds(10))
        #expect(policy.delay(afterFailure: 10, random: 0) == .seconds(8))
    }

    @Test func hugeFailureCountsAndOutOfRangeInputsStayBounded() {
        let policy = FailureBackoff(initial: .seconds(1), maximum: .seconds(60), jitter: 5)
        #expect(policy.jitter == 1)
        #expect(policy.delay(afterFailure: Int.max, random: 0.5) == .seconds(60))
        #expect(policy.delay(afterFailure: 0, random: 0.5) == .seconds(1))
        #expect(policy.delay(afterFailure: -3, random: 7) == .seconds(2))
        let inverted = FailureBackoff(initial: .seconds(5), maximum: .seconds(1))
        #expect(inverted.maximum == .seconds(5))
        #expect(FailureBackoff(initial: .zero).delay(afterFailure: 40, random: 0.9) == .zero)
    }
}

@Suite("FailedJobAttempts")
struct FailedJobAttemptsTests {
    @Test func countsFailuresPerJobAndForgetsAcknowledgedJobs() {
        let attempts = FailedJobAttempts()
        #expect(attempts.recordFailure(of: 1) == 1)
        #expect(attempts.recordFailure(of: 1) == 2)
        #expect(attempts.recordFailure(of: 2) == 1)
        attempts.forget(1)
        #expect(attempts.recordFailure(of: 1) == 1)
        #expect(attempts.count == 2)
    }

    @Test func staysWithinItsCapacityAndKeepsTheMostRecentJobs() {
        let attempts = FailedJobAttempts(capacity: 100)
        for job in Int64(1)...1000 { _ = attempts.recordFailure(of: job) }
        #expect(attempts.count <= 100)
        #expect(attempts.count >= 50)
        #expect(attempts.recordFailure(of: 1000) == 2)
        #expect(attempts.recordFailure(of: 1) == 1)
    }
}
