import AffinityProtocol
import Testing

@testable import AffinityServer

@Suite("SubscriptionTable")
struct SubscriptionTableTests {
    let k1 = ProcessInstanceKey(1)!
    let k2 = ProcessInstanceKey(2)!

    @Test func holdsLiveOutcomesWhileLoading() {
        var table = SubscriptionTable<String>(limit: 10)
        #expect(table.offer("early", for: k1) == .notSubscribed)
        #expect(table.begin(k1) == .started)
        #expect(table.offer("a", for: k1) == .held)
        #expect(table.offer("b", for: k1) == .held)
        #expect(table.complete(k1) == ["a", "b"])
        #expect(table.offer("c", for: k1) == .send)
    }

    @Test func enforcesTheLimit() {
        var table = SubscriptionTable<String>(limit: 1)
        #expect(table.begin(k1) == .started)
        #expect(table.begin(k2) == .limitReached)
        #expect(table.begin(k1) == .alreadySubscribed)
        _ = table.remove(k1)
        #expect(table.begin(k2) == .started)
    }

    @Test func resubscribeReloads() {
        var table = SubscriptionTable<String>(limit: 5)
        _ = table.begin(k1)
        _ = table.complete(k1)
        #expect(table.begin(k1) == .alreadySubscribed)
        #expect(table.offer("x", for: k1) == .held)
        #expect(table.complete(k1) == ["x"])
    }

    @Test func unsubscribeWhileLoadingReturnsHeld() {
        var table = SubscriptionTable<String>(limit: 5)
        _ = table.begin(k1)
        _ = table.offer("x", for: k1)
        #expect(table.remove(k1) == ["x"])
        #expect(table.complete(k1) == nil)
        #expect(table.remove(k1) == nil)
    }

    @Test func removeAllReturnsKeysAndHeld() {
        var table = SubscriptionTable<String>(limit: 5)
        _ = table.begin(k1)
        _ = table.begin(k2)
        _ = table.complete(k2)
        _ = table.offer("held", for: k1)
        let (keys, held) = table.removeAll()
        #expect(Set(keys) == [k1, k2])
        #expect(held == ["held"])
        #expect(table.count == 0)
    }
}
