import AffinityProtocol
import NIOPosix
import Testing

@testable import AffinityServer

@Suite("Pending delivery: waiting for the ack")
struct PendingDeliveryTests {
    private func pending(subscribers: Set<ConnectionID>) throws -> PendingDelivery {
        let outcome = try Outcome(id: "o-1", key: ProcessInstanceKey(42)!, variables: Array(#"{"a":1}"#.utf8))
        return PendingDelivery(outcome: outcome, subscribers: subscribers)
    }

    @Test("an ack before the timeout decides delivered, at once")
    func ackedInTime() async throws {
        let connection = ConnectionID.next()
        let delivery = try pending(subscribers: [connection])
        let started = ContinuousClock.now
        async let decision = delivery.waitForDecision(timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(20))
        #expect(delivery.acknowledged(by: connection) == .completeDelivered)
        #expect(await decision)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("no ack within the timeout decides park")
    func timesOut() async throws {
        let delivery = try pending(subscribers: [ConnectionID.next()])
        let started = ContinuousClock.now
        #expect(await delivery.waitForDecision(timeout: .milliseconds(100)) == false)
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        #expect(delivery.attemptState == .parking(acknowledged: false))
    }

    @Test("cancelling the waiting task stops the wait and decides park")
    func cancelled() async throws {
        let delivery = try pending(subscribers: [ConnectionID.next()])
        let started = ContinuousClock.now
        let waiter = Task { await delivery.waitForDecision(timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        #expect(await waiter.value == false)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(delivery.attemptState == .parking(acknowledged: false))
    }

    @Test("every subscriber lost decides park without waiting for the timeout")
    func subscribersLost() async throws {
        let connection = ConnectionID.next()
        let delivery = try pending(subscribers: [connection])
        async let decision = delivery.waitForDecision(timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(20))
        delivery.subscriberLost(connection)
        #expect(await decision == false)
    }
}

extension PendingDelivery {
    /// ``waitForDecision(timeouts:)`` with ack timeouts of its own, on an event loop of the process's group.
    fileprivate func waitForDecision(timeout: Duration) async -> Bool {
        await waitForDecision(
            timeouts: AckTimeouts(timeout: timeout, eventLoop: MultiThreadedEventLoopGroup.singleton.any()))
    }
}
