import Testing
import ZeebeClient

/// A generator that always returns the same value, so jitter is predictable.
struct FixedGenerator: RandomNumberGenerator {
    var value: UInt64
    mutating func next() -> UInt64 { value }
}

@Suite struct JobPollSchedulerTests {
    let noJitter = ExponentialBackoff(minimum: .milliseconds(50), maximum: .seconds(5), multiplier: 1.6, jitter: 0)

    @Test func firstActionPollsForFullCapacity() {
        var scheduler = JobPollScheduler(maxJobsActive: 32, pollInterval: .milliseconds(100))
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 32))
        #expect(scheduler.isPolling)
        // A second poll is not started while one runs.
        #expect(scheduler.nextPollAction() == .waitForCapacity)
    }

    @Test func emptyPollWaitsThePollInterval() {
        var generator = FixedGenerator(value: 0)
        var scheduler = JobPollScheduler(maxJobsActive: 4, pollInterval: .milliseconds(100), backoff: noJitter)
        _ = scheduler.nextPollAction()
        scheduler.pollSucceeded(activated: 0, using: &generator)
        #expect(scheduler.nextPollAction() == .wait(.milliseconds(100)))
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 4))
    }

    @Test func pollsOnlyAtOrBelowThreshold() {
        var generator = FixedGenerator(value: 0)
        var scheduler = JobPollScheduler(maxJobsActive: 10, pollInterval: .milliseconds(100), backoff: noJitter)
        #expect(scheduler.pollThresholdCount == 3)
        _ = scheduler.nextPollAction()
        scheduler.pollSucceeded(activated: 10, using: &generator)
        #expect(scheduler.inFlight == 10)
        #expect(scheduler.nextPollAction() == .waitForCapacity)
        for _ in 0..<6 { scheduler.jobFinished() }
        #expect(scheduler.inFlight == 4)
        #expect(scheduler.nextPollAction() == .waitForCapacity)
        scheduler.jobFinished()
        // 3 in flight = round(0.3 × 10): poll for the remaining 7 at once.
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 7))
    }

    @Test func errorsBackOffExponentiallyAndResetOnSuccess() {
        var generator = FixedGenerator(value: 0)
        var scheduler = JobPollScheduler(maxJobsActive: 4, pollInterval: .milliseconds(100), backoff: noJitter)
        var delays: [Duration] = []
        for _ in 0..<12 {
            _ = scheduler.nextPollAction()
            delays.append(scheduler.pollFailed(using: &generator))
            #expect(scheduler.nextPollAction() == .wait(delays.last!))
        }
        #expect(delays[0] == .milliseconds(160))
        #expect(delays[1] == .milliseconds(256))
        #expect(zip(delays, delays.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(delays.last == .seconds(5))
        _ = scheduler.nextPollAction()
        scheduler.pollSucceeded(activated: 1, using: &generator)
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 3))
        #expect(scheduler.pollFailed(using: &generator) == .milliseconds(160))
    }

    @Test func jitterStaysWithinTenPercent() {
        var generator = SystemRandomNumberGenerator()
        let backoff = ExponentialBackoff.standard
        for _ in 0..<200 {
            let delay = backoff.next(after: .seconds(1), using: &generator)
            #expect(delay >= .milliseconds(1440) && delay <= .milliseconds(1760))
        }
        let small = backoff.next(after: .zero, using: &generator)
        #expect(small >= .milliseconds(45) && small <= .milliseconds(55))
    }

    /// A steady stream must not starve the poll: streamed jobs have their own budget and do not count
    /// toward the poll threshold (before, two streamed jobs with `maxJobsActive` 2 stopped polling).
    @Test func streamedJobsDoNotCountTowardThePollThreshold() {
        var generator = FixedGenerator(value: 0)
        var scheduler = JobPollScheduler(maxJobsActive: 2, pollInterval: .milliseconds(100), backoff: noJitter)
        scheduler.jobStreamed()
        #expect(scheduler.hasCapacity)
        scheduler.jobStreamed()
        #expect(!scheduler.hasCapacity)
        #expect(scheduler.inFlight == 2)
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 2))
        scheduler.pollSucceeded(activated: 2, using: &generator)
        #expect(scheduler.inFlight == 4)
        #expect(scheduler.nextPollAction() == .waitForCapacity)
        scheduler.streamedJobFinished()
        #expect(scheduler.hasCapacity)
        #expect(scheduler.nextPollAction() == .waitForCapacity)
        scheduler.jobFinished()
        scheduler.jobFinished()
        #expect(scheduler.streamedInFlight == 1)
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 2))
    }

    /// Jobs handed over message by message stay counted when the poll fails afterwards.
    @Test func jobsPolledBeforeAnErrorStayInFlight() {
        var generator = FixedGenerator(value: 0)
        var scheduler = JobPollScheduler(maxJobsActive: 10, pollInterval: .milliseconds(100), backoff: noJitter)
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 10))
        scheduler.jobsPolled(4)
        scheduler.jobsPolled(4)
        #expect(scheduler.pollFailed(using: &generator) == .milliseconds(160))
        #expect(scheduler.polledInFlight == 8)
        #expect(scheduler.nextPollAction() == .wait(.milliseconds(160)))
        #expect(scheduler.nextPollAction() == .waitForCapacity)
        for _ in 0..<5 { scheduler.jobFinished() }
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 7))
        scheduler.jobsPolled(1)
        scheduler.pollCompleted(activated: 1, using: &generator)
        #expect(scheduler.polledInFlight == 4)
    }

    @Test func emptyPollsBackOffWhileStreamIsOpen() {
        var generator = FixedGenerator(value: 0)
        var scheduler = JobPollScheduler(maxJobsActive: 2, pollInterval: .milliseconds(100), backoff: noJitter)
        scheduler.streamOpening()
        _ = scheduler.nextPollAction()
        scheduler.pollSucceeded(activated: 0, using: &generator)
        #expect(scheduler.nextPollAction() == .wait(.milliseconds(160)))
        _ = scheduler.nextPollAction()
        scheduler.pollSucceeded(activated: 0, using: &generator)
        #expect(scheduler.nextPollAction() == .wait(.milliseconds(256)))
        // The stream closes: polling goes back to the plain interval.
        #expect(scheduler.streamEnded(failed: false, using: &generator) == .zero)
        _ = scheduler.nextPollAction()
        scheduler.pollSucceeded(activated: 0, using: &generator)
        #expect(scheduler.nextPollAction() == .wait(.milliseconds(100)))
    }

    @Test func failedStreamsReopenWithBackoff() {
        var generator = FixedGenerator(value: 0)
        var scheduler = JobPollScheduler(maxJobsActive: 2, pollInterval: .milliseconds(100), backoff: noJitter)
        scheduler.streamOpening()
        #expect(scheduler.streamEnded(failed: true, using: &generator) == .milliseconds(160))
        scheduler.streamOpening()
        #expect(scheduler.streamEnded(failed: true, using: &generator) == .milliseconds(256))
        scheduler.streamOpening()
        scheduler.streamDelivered()
        #expect(scheduler.streamEnded(failed: true, using: &generator) == .milliseconds(160))
        #expect(!scheduler.isStreamOpen)
    }

    @Test func maxJobsActiveIsAtLeastOne() {
        var scheduler = JobPollScheduler(maxJobsActive: 0, pollInterval: .milliseconds(100))
        #expect(scheduler.maxJobsActive == 1)
        #expect(scheduler.nextPollAction() == .poll(maxJobs: 1))
    }
}
