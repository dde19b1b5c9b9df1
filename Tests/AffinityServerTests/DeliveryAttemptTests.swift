import Testing

@testable import AffinityServer

@Suite("DeliveryAttempt")
struct DeliveryAttemptTests {
    let a = ConnectionID.next()
    let b = ConnectionID.next()

    @Test func firstAckDelivers() {
        var attempt = DeliveryAttempt(subscribers: [a, b])
        #expect(attempt.acknowledged(by: b) == .completeDelivered)
        #expect(attempt.state == .delivered)
        #expect(attempt.acknowledged(by: a) == .none)
        #expect(attempt.timedOut() == .none)
        #expect(attempt.subscriberLost(a) == .none)
    }

    @Test func parksWhenEverySubscriberIsLost() {
        var attempt = DeliveryAttempt(subscribers: [a, b])
        #expect(attempt.subscriberLost(a) == .none)
        #expect(attempt.isWaiting)
        #expect(attempt.subscriberLost(a) == .none)
        #expect(attempt.subscriberLost(b) == .park)
        #expect(attempt.state == .parking(acknowledged: false))
        #expect(attempt.parkCompleted() == .none)
        #expect(attempt.state == .parked)
    }

    @Test func parksOnTimeout() {
        var attempt = DeliveryAttempt(subscribers: [a])
        #expect(attempt.timedOut() == .park)
        #expect(attempt.timedOut() == .none)
        #expect(attempt.parkCompleted() == .none)
    }

    @Test func lateAckAfterParkRemovesTheParkedCopy() {
        var attempt = DeliveryAttempt(subscribers: [a])
        _ = attempt.timedOut()
        _ = attempt.parkCompleted()
        #expect(attempt.acknowledged(by: a) == .removeParkedCopy)
    }

    @Test func ackWhileParkingRemovesTheCopyOnceParked() {
        var attempt = DeliveryAttempt(subscribers: [a])
        _ = attempt.timedOut()
        #expect(attempt.acknowledged(by: a) == .none)
        #expect(attempt.state == .parking(acknowledged: true))
        #expect(attempt.parkCompleted() == .removeParkedCopy)
        #expect(attempt.parkCompleted() == .none)
    }

    @Test func noSubscribersMeansPark() {
        var attempt = DeliveryAttempt(subscribers: [])
        #expect(!attempt.isWaiting)
        #expect(attempt.timedOut() == .none)
        #expect(attempt.parkCompleted() == .none)
    }

    // A long poll parked the outcome before handing it to its HTTP client.

    @Test func withAParkedCopyTheTimeoutParksWithoutParkingAgain() {
        var attempt = DeliveryAttempt(subscribers: [a])
        attempt.parkedCopyMade()
        #expect(attempt.isWaiting)
        #expect(attempt.timedOut() == .none)
        #expect(attempt.state == .parked)
        #expect(attempt.acknowledged(by: a) == .removeParkedCopy)
    }

    @Test func withAParkedCopyLosingEverySubscriberParksWithoutParkingAgain() {
        var attempt = DeliveryAttempt(subscribers: [a, b])
        attempt.parkedCopyMade()
        #expect(attempt.subscriberLost(b) == .none)
        #expect(attempt.subscriberLost(a) == .none)
        #expect(attempt.state == .parked)
    }

    @Test func anAckThroughAnotherSubscriberRemovesThePollsParkedCopy() {
        var attempt = DeliveryAttempt(subscribers: [a, b])
        attempt.parkedCopyMade()
        #expect(attempt.acknowledged(by: b) == .removeParkedCopy)
        #expect(attempt.state == .delivered)
        #expect(attempt.acknowledged(by: a) == .none)
    }

    @Test func aParkedCopyAfterTheDecisionChangesNothing() {
        var attempt = DeliveryAttempt(subscribers: [a])
        _ = attempt.acknowledged(by: a)
        attempt.parkedCopyMade()
        #expect(attempt.state == .delivered)
        var parking = DeliveryAttempt(subscribers: [a])
        _ = parking.timedOut()
        parking.parkedCopyMade()
        #expect(parking.state == .parking(acknowledged: false))
    }
}
