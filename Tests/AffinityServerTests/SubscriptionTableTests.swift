import AffinityProtocol
import Testing

@testable import AffinityServer

@Suite("SubscriptionTable")
struct SubscriptionTableTests {
    let k1 = ProcessInstanceKey(1)!
    let k2 = ProcessInstanceKey(2)!

    @Test func refusesLiveOutcomesWhileReadingThenSendsThem() {
        var table = SubscriptionTable(limit: 10)
        #expect(table.offer(for: k1) == .notSubscribed)
        #expect(table.begin(k1) == .started)
        #expect(table.entries[k1] == .reading(parkedSince: false))
        // refused: the outcome parks behind the backlog, and the read that follows finds it
        #expect(table.offer(for: k1) == .refused)
        #expect(table.pageRead(k1, ids: [], hasMore: false) == .readAgain)
        #expect(table.pageRead(k1, ids: [], hasMore: false) == .active)
        #expect(table.offer(for: k1) == .send)
    }

    @Test func aLastPageWithNothingParkedSinceActivates() {
        var table = SubscriptionTable(limit: 10)
        _ = table.begin(k1)
        #expect(table.pageRead(k1, ids: ["a", "b"], hasMore: false) == .active)
        #expect(table.offer(for: k1) == .send)
        // acks of a last page do not start reads
        #expect(table.acknowledged(k1, id: "a") == false)
    }

    @Test func readsTheNextPageOnceEveryOutcomeOfThePageIsAcknowledged() {
        var table = SubscriptionTable(limit: 10)
        _ = table.begin(k1)
        #expect(table.pageRead(k1, ids: ["a", "b"], hasMore: true) == .waitForAcknowledgements)
        #expect(table.offer(for: k1) == .refused)
        #expect(table.acknowledged(k1, id: "unknown") == false)
        #expect(table.acknowledged(k1, id: "a") == false)
        #expect(table.acknowledged(k1, id: "a") == false)
        #expect(table.acknowledged(k1, id: "b") == true)
        #expect(table.entries[k1] == .reading(parkedSince: false))
        #expect(table.pageRead(k1, ids: ["c"], hasMore: false) == .active)
    }

    @Test func somethingParkedDuringTheReadOfALastPageMakesAnotherPage() {
        var table = SubscriptionTable(limit: 10)
        _ = table.begin(k1)
        table.parkedWaitingKeepsReading(k1)
        #expect(table.pageRead(k1, ids: ["a"], hasMore: false) == .waitForAcknowledgements)
        #expect(table.acknowledged(k1, id: "a") == true)
    }

    @Test func parkedWaitingStartsAReadOnlyWhenActive() {
        var table = SubscriptionTable(limit: 10)
        #expect(table.parkedWaiting(k1) == false)
        _ = table.begin(k1)
        #expect(table.parkedWaiting(k1) == false)
        #expect(table.entries[k1] == .reading(parkedSince: true))
        #expect(table.pageRead(k1, ids: ["a"], hasMore: false) == .waitForAcknowledgements)
        #expect(table.parkedWaiting(k1) == false)
        #expect(table.acknowledged(k1, id: "a") == true)
        #expect(table.pageRead(k1, ids: [], hasMore: false) == .active)
        #expect(table.parkedWaiting(k1) == true)
        #expect(table.entries[k1] == .reading(parkedSince: false))
    }

    @Test func aFailedReadActivates() {
        var table = SubscriptionTable(limit: 10)
        _ = table.begin(k1)
        table.readFailed(k1)
        #expect(table.offer(for: k1) == .send)
    }

    @Test func enforcesTheLimit() {
        var table = SubscriptionTable(limit: 1)
        #expect(table.begin(k1) == .started)
        #expect(table.begin(k2) == .limitReached)
        #expect(table.begin(k1) == .alreadySubscribed)
        _ = table.remove(k1)
        #expect(table.begin(k2) == .started)
    }

    @Test func resubscribeReadsFromTheFirstPageAgain() {
        var table = SubscriptionTable(limit: 5)
        _ = table.begin(k1)
        _ = table.pageRead(k1, ids: ["a"], hasMore: true)
        #expect(table.begin(k1) == .alreadySubscribed)
        #expect(table.entries[k1] == .reading(parkedSince: false))
    }

    @Test func aPageForAKeyUnsubscribedMeanwhileIsDropped() {
        var table = SubscriptionTable(limit: 5)
        _ = table.begin(k1)
        #expect(table.remove(k1) == true)
        #expect(table.pageRead(k1, ids: ["a"], hasMore: false) == .unsubscribed)
        #expect(table.remove(k1) == false)
        #expect(table.acknowledged(k1, id: "a") == false)
    }

    @Test func removeAllReturnsTheKeys() {
        var table = SubscriptionTable(limit: 5)
        _ = table.begin(k1)
        _ = table.begin(k2)
        _ = table.pageRead(k2, ids: [], hasMore: false)
        #expect(Set(table.removeAll()) == [k1, k2])
        #expect(table.count == 0)
    }
}

extension SubscriptionTable {
    /// A delivery parked an outcome while the read runs (what ``offer(for:)`` records when it refuses).
    mutating func parkedWaitingKeepsReading(_ key: ProcessInstanceKey) {
        _ = offer(for: key)
    }
}
