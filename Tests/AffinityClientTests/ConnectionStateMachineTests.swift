import Testing

@testable import AffinityClient

@Suite struct ConnectionStateMachineTests {
    let backoff = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0)

    @Test func firstAttemptGoesToTheFirstURLAtOnce() {
        var machine = ConnectionStateMachine(urlCount: 3, backoff: backoff)
        #expect(machine.state == .idle)
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 0, after: .zero))
        #expect(machine.state == .connecting(urlIndex: 0))
        machine.attemptStarted()
        machine.welcomed(replica: "r0")
        #expect(machine.state == .connected(urlIndex: 0, replica: "r0"))
        #expect(machine.isConnected)
    }

    @Test func failuresTryEveryURLOnceThenBackOffExponentially() {
        var machine = ConnectionStateMachine(urlCount: 2, backoff: backoff)
        _ = machine.nextAttempt(random: 0)
        machine.connectionEnded()
        #expect(machine.consecutiveFailures == 1)
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 1, after: .zero))
        machine.connectionEnded()
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 0, after: .milliseconds(100)))
        #expect(machine.state == .backingOff(urlIndex: 0, delay: .milliseconds(100)))
        machine.attemptStarted()
        machine.connectionEnded()
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 1, after: .milliseconds(200)))
        machine.connectionEnded()
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 0, after: .milliseconds(400)))
        for _ in 0..<10 {
            machine.connectionEnded()
            _ = machine.nextAttempt(random: 0)
        }
        machine.connectionEnded()
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 1, after: .seconds(1)))
    }

    @Test func singleURLRetriesTheSameURLWithBackOff() {
        var machine = ConnectionStateMachine(urlCount: 1, backoff: backoff)
        _ = machine.nextAttempt(random: 0)
        machine.connectionEnded()
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 0, after: .milliseconds(100)))
        machine.connectionEnded()
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 0, after: .milliseconds(200)))
    }

    @Test func welcomeResetsTheFailureCount() {
        var machine = ConnectionStateMachine(urlCount: 1, backoff: backoff)
        for _ in 0..<5 {
            _ = machine.nextAttempt(random: 0)
            machine.connectionEnded()
        }
        #expect(machine.consecutiveFailures == 5)
        _ = machine.nextAttempt(random: 0)
        machine.welcomed(replica: "r")
        #expect(machine.consecutiveFailures == 0)
        // a lost established connection: a short delay, not the accumulated back-off
        machine.connectionEnded()
        #expect(machine.state == .idle)
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 0, after: .milliseconds(100)))
    }

    @Test func closedConnectionMovesToTheNextURL() {
        var machine = ConnectionStateMachine(urlCount: 3, backoff: backoff)
        _ = machine.nextAttempt(random: 0)
        machine.welcomed(replica: "r0")
        machine.connectionEnded()
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 1, after: .milliseconds(100)))
    }

    @Test func drainMovesToTheNextURLAtOnce() {
        var machine = ConnectionStateMachine(urlCount: 2, backoff: backoff)
        _ = machine.nextAttempt(random: 0)
        machine.welcomed(replica: "r0")
        machine.drainReceived()
        #expect(machine.state == .draining(urlIndex: 0))
        #expect(!machine.isConnected)
        machine.connectionEnded()
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 1, after: .zero))
        machine.welcomed(replica: "r1")
        machine.drainReceived()
        machine.connectionEnded()
        #expect(machine.nextAttempt(random: 0) == .connect(urlIndex: 0, after: .zero))
    }

    @Test func stopEndsEverything() {
        var machine = ConnectionStateMachine(urlCount: 2, backoff: backoff)
        _ = machine.nextAttempt(random: 0)
        machine.welcomed(replica: "r0")
        machine.stop()
        #expect(machine.state == .stopped)
        machine.connectionEnded()
        machine.drainReceived()
        machine.attemptStarted()
        machine.welcomed(replica: "late")
        #expect(machine.state == .stopped)
        #expect(machine.nextAttempt(random: 0) == .stop)
    }
}
