import AffinityProtocol
import Testing

@testable import AffinityServer

@Suite("ForwardingAttempt")
struct ForwardingAttemptTests {
    let r2 = Route(replicaID: "r2", clientID: "")
    let r3 = Route(replicaID: "r3", clientID: "")

    @Test func startsWithTheStore() {
        #expect(ForwardingAttempt(maximumForwards: 3).start() == .routeOrPark)
    }

    @Test func parkedHereIsOfferedToLocalSubscribers() {
        var attempt = ForwardingAttempt(maximumForwards: 3)
        #expect(attempt.routed(.parked(duplicate: false)) == .finish(.parked, offerParkedCopy: true))
    }

    @Test func anAcknowledgedOutcomeIsAnsweredDeliveredAndNotHandedOut() {
        var attempt = ForwardingAttempt(maximumForwards: 3)
        #expect(attempt.routed(.alreadyAcknowledged) == .finish(.delivered, offerParkedCopy: false))
    }

    @Test(arguments: [DeliveryStatus.delivered, .parked])
    func theOwnersAnswerIsTheWorkersAnswer(status: DeliveryStatus) {
        var attempt = ForwardingAttempt(maximumForwards: 3)
        #expect(attempt.routed(.routed(r2)) == .forward(r2))
        #expect(attempt.forwarded(.answered(status)) == .finish(status, offerParkedCopy: false))
    }

    @Test func anOwnerThatDoesNotTakeItIsParkedForOnlyWhileTheRouteNamesIt() {
        var attempt = ForwardingAttempt(maximumForwards: 3)
        _ = attempt.routed(.routed(r2))
        #expect(attempt.forwarded(.notTaken) == .park(ifRoutedTo: "r2"))
        // parked for the dead owner's key: its next subscriber takes it wherever it subscribes
        #expect(attempt.parked(.parked(duplicate: false)) == .finish(.parked, offerParkedCopy: false))
    }

    @Test func aParkFindingTheIdAcknowledgedAnswersDelivered() {
        var attempt = ForwardingAttempt(maximumForwards: 3)
        _ = attempt.routed(.routed(r2))
        _ = attempt.forwarded(.notTaken)
        #expect(attempt.parked(.alreadyAcknowledged) == .finish(.delivered, offerParkedCopy: false))
    }

    @Test func aMovedRouteIsFollowedToTheNewOwner() {
        var attempt = ForwardingAttempt(maximumForwards: 3)
        _ = attempt.routed(.routed(r2))
        _ = attempt.forwarded(.notTaken)
        #expect(attempt.parked(.routed(r3)) == .forward(r3))
        #expect(attempt.forwarded(.notTaken) == .park(ifRoutedTo: "r3"))
        #expect(attempt.parked(.parked(duplicate: false)) == .finish(.parked, offerParkedCopy: false))
    }

    @Test func aRouteThatKeepsMovingEndsAfterTheMaximumOfForwards() {
        var attempt = ForwardingAttempt(maximumForwards: 3)
        var forwards = 0
        var action = attempt.routed(.routed(r2))
        while case .forward(let route) = action {
            forwards += 1
            #expect(attempt.forwarded(.notTaken) == .park(ifRoutedTo: route.replicaID))
            action = attempt.parked(.routed(route == r2 ? r3 : r2))
        }
        #expect(forwards == 3)
        #expect(action == .routeKeepsMoving)
    }

    @Test func oneForwardAtLeast() {
        var attempt = ForwardingAttempt(maximumForwards: 0)
        #expect(attempt.routed(.routed(r2)) == .forward(r2))
        _ = attempt.forwarded(.notTaken)
        #expect(attempt.parked(.routed(r3)) == .routeKeepsMoving)
    }
}
