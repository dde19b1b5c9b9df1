import AffinityProtocol
import Testing

@testable import AffinityClient

@Suite struct SubscriptionStateMachineTests {
    let k1 = ProcessInstanceKey(11)!
    let k2 = ProcessInstanceKey(22)!
    let a = SubscriberID(value: 1)
    let b = SubscriberID(value: 2)
    let c = SubscriberID(value: 3)

    func outcome(_ id: String, _ key: ProcessInstanceKey) -> Outcome {
        try! Outcome(id: id, key: key, variables: Array("{}".utf8))
    }

    @Test func subscribesWhileDisconnectedAreSentOnConnect() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 10)
        #expect(machine.add(a, key: k2) == nil)
        #expect(machine.add(b, key: k1) == nil)
        #expect(machine.add(c, key: k1) == nil)
        #expect(machine.connected() == [k1, k2])
        #expect(machine.isConnected)
    }

    @Test func subscribeIsSentOncePerKeyAndUnsubscribeWhenTheLastRequestEnds() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 10)
        #expect(machine.connected() == [])
        #expect(machine.add(a, key: k1) == k1)
        #expect(machine.add(b, key: k1) == nil)
        #expect(machine.remove(a) == nil)
        #expect(machine.subscribers(of: k1) == [b])
        #expect(machine.remove(b) == k1)
        #expect(machine.keys.isEmpty)
        #expect(machine.subscriberCount == 0)
        #expect(machine.remove(b) == nil)
    }

    @Test func reconnectResubscribesEveryPendingKey() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 10)
        _ = machine.connected()
        _ = machine.add(a, key: k1)
        _ = machine.add(b, key: k2)
        machine.disconnected()
        #expect(!machine.isConnected)
        // while disconnected nothing is sent, not even an unsubscribe
        #expect(machine.remove(b) == nil)
        #expect(machine.add(c, key: k1) == nil)
        #expect(machine.connected() == [k1])
        // after a reconnect the key counts as subscribed: no second subscribe
        let d = SubscriberID(value: 4)
        #expect(machine.add(d, key: k1) == nil)
    }

    @Test func confirmationsCountOnlyForTheCurrentConnection() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 10)
        _ = machine.add(a, key: k1)
        machine.confirmed(k1)  // not connected: a stale answer
        #expect(machine.confirmedKeyCount == 0)
        _ = machine.connected()
        machine.confirmed(k1)
        machine.confirmed(k2)  // never subscribed
        #expect(machine.confirmedKeyCount == 1)
        machine.disconnected()
        #expect(machine.confirmedKeyCount == 0)
        _ = machine.connected()
        #expect(machine.confirmedKeyCount == 0)
        machine.confirmed(k1)
        #expect(machine.confirmedKeyCount == 1)
        _ = machine.remove(a)
        #expect(machine.confirmedKeyCount == 0)
    }

    @Test func outcomesGoToEverySubscriberOfTheirKeyOnly() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 10)
        _ = machine.connected()
        _ = machine.add(a, key: k1)
        _ = machine.add(b, key: k1)
        _ = machine.add(c, key: k2)
        #expect(machine.received(outcome("o1", k1)) == .deliver([a, b]))
        #expect(machine.received(outcome("o2", k2)) == .deliver([c]))
        #expect(machine.received(outcome("o3", ProcessInstanceKey(99)!)) == .noSubscriber)
    }

    @Test func duplicatesAreDeliveredOnceAndAcknowledgedOnlyAfterHandOver() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 10)
        _ = machine.connected()
        _ = machine.add(a, key: k1)
        #expect(machine.received(outcome("o1", k1)) == .deliver([a]))
        // a re-delivery while the first copy still waits for its consumer: dropped, no early ack
        #expect(machine.received(outcome("o1", k1)) == .dropDuplicate)
        let firstAck = machine.handedOver(id: "o1", key: k1)
        let secondAck = machine.handedOver(id: "o1", key: k1)
        #expect(firstAck)
        #expect(!secondAck)
        // after hand-over, a re-delivery is acknowledged again so the replica stops re-sending it
        #expect(machine.received(outcome("o1", k1)) == .acknowledgeDuplicate)
        #expect(machine.rememberedIDCount == 1)
    }

    @Test func idsOfAReleasedKeyMoveToTheBoundedRecentSet() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 2)
        _ = machine.connected()
        _ = machine.add(a, key: k1)
        _ = machine.received(outcome("o1", k1))
        _ = machine.received(outcome("o2", k1))
        _ = machine.handedOver(id: "o1", key: k1)
        _ = machine.remove(a)
        #expect(machine.rememberedIDCount == 0)
        #expect(machine.recentIDs.count == 1)  // o2 was never taken: it must come again
        #expect(machine.received(outcome("o1", k1)) == .acknowledgeDuplicate)
        _ = machine.add(b, key: k1)
        #expect(machine.received(outcome("o1", k1)) == .acknowledgeDuplicate)
        #expect(machine.received(outcome("o2", k1)) == .deliver([b]))
        _ = machine.handedOver(id: "o2", key: k1)
        _ = machine.remove(b)
        _ = machine.add(c, key: k2)
        _ = machine.received(outcome("o3", k2))
        _ = machine.handedOver(id: "o3", key: k2)
        _ = machine.remove(c)
        #expect(machine.recentIDs.count == 2)
        #expect(!machine.recentIDs.contains("o1"))
        #expect(machine.recentIDs.contains("o3"))
    }

    @Test func handOverAfterTheKeyWasReleasedStillAcknowledges() {
        var machine = SubscriptionStateMachine(recentIDCapacity: 4)
        _ = machine.connected()
        _ = machine.add(a, key: k1)
        _ = machine.received(outcome("o1", k1))
        _ = machine.remove(a)
        let ack = machine.handedOver(id: "o1", key: k1)
        #expect(ack)
        #expect(machine.recentIDs.contains("o1"))
    }

    @Test func recentSetForgetsOldestFirstOverManyInsertions() {
        var recent = RecentIDSet(capacity: 3)
        for index in 0..<5000 { recent.insert("id-\(index)") }
        #expect(recent.count == 3)
        #expect(recent.contains("id-4999"))
        #expect(recent.contains("id-4997"))
        #expect(!recent.contains("id-4996"))
        recent.insert("id-4999")
        #expect(recent.count == 3)
        var none = RecentIDSet(capacity: 0)
        none.insert("x")
        #expect(!none.contains("x"))
    }
}
