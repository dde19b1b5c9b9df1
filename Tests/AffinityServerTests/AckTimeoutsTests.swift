import AffinityProtocol
import NIOCore
import NIOPosix
import Testing

@testable import AffinityServer

@Suite("Ack timeouts shared by the deliveries of a replica")
struct AckTimeoutsTests {
    private let eventLoop = MultiThreadedEventLoopGroup.singleton.any()

    private func pending(_ id: String) throws -> (PendingDelivery, ConnectionID) {
        let connection = ConnectionID.next()
        let outcome = try Outcome(id: id, key: ProcessInstanceKey(42)!, variables: Array(#"{"a":1}"#.utf8))
        return (PendingDelivery(outcome: outcome, subscribers: [connection]), connection)
    }

    @Test("deadlines share a timer per hundredth of the timeout, between 1 and 10 ms")
    func granularity() {
        #expect(AckTimeouts(timeout: .seconds(10), eventLoop: eventLoop).granularity == .milliseconds(10))
        #expect(AckTimeouts(timeout: .milliseconds(500), eventLoop: eventLoop).granularity == .milliseconds(5))
        #expect(AckTimeouts(timeout: .milliseconds(20), eventLoop: eventLoop).granularity == .milliseconds(1))
    }

    @Test("a delivery acked early leaves its slot; the others of the slot time out, not before the timeout")
    func sharedSlot() async throws {
        let timeouts = AckTimeouts(timeout: .milliseconds(200), eventLoop: eventLoop)
        let (acked, subscriber) = try pending("o-1")
        let (unacked, _) = try pending("o-2")
        let (alsoUnacked, _) = try pending("o-3")
        let started = ContinuousClock.now
        async let first = acked.waitForDecision(timeouts: timeouts)
        async let second = unacked.waitForDecision(timeouts: timeouts)
        async let third = alsoUnacked.waitForDecision(timeouts: timeouts)
        try await Task.sleep(for: .milliseconds(20))
        #expect(acked.acknowledged(by: subscriber) == .completeDelivered)
        #expect(await first)
        #expect(await second == false)
        #expect(await third == false)
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        #expect(unacked.attemptState == .parking(acknowledged: false))
        #expect(alsoUnacked.attemptState == .parking(acknowledged: false))
        #expect(acked.attemptState == .delivered)
    }
}
