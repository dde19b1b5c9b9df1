import AffinityProtocol
import Testing

@testable import AffinityServer

@Suite("KeyedOutcomeQueue")
struct KeyedOutcomeQueueTests {
    func outcome(_ id: String, _ key: Int64) throws -> Outcome {
        try Outcome(id: id, key: ProcessInstanceKey(key)!, variables: Array("{}".utf8))
    }

    @Test func chainsPerKeyInOrderWithALimit() throws {
        let queue = KeyedOutcomeQueue(limit: 3)
        #expect(queue.enqueue(try outcome("a1", 1)) == .startChain)
        #expect(queue.enqueue(try outcome("a2", 1)) == .queued)
        #expect(queue.enqueue(try outcome("b1", 2)) == .startChain)
        #expect(queue.enqueue(try outcome("a3", 1)) == .full)
        #expect(queue.next(for: ProcessInstanceKey(1)!)?.id == "a2")
        #expect(queue.enqueue(try outcome("a3", 1)) == .queued)
        #expect(queue.next(for: ProcessInstanceKey(1)!)?.id == "a3")
        #expect(queue.next(for: ProcessInstanceKey(1)!) == nil)
        #expect(queue.next(for: ProcessInstanceKey(2)!) == nil)
        #expect(queue.enqueue(try outcome("a4", 1)) == .startChain)
    }
}
