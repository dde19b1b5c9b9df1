import AffinityProtocol
import Testing

@testable import AffinityServer

@Suite("KeyedOutcomeQueue")
struct KeyedOutcomeQueueTests {
    func outcome(_ id: String, _ key: Int64, bytes: Int = 2) throws -> Outcome {
        let variables = bytes <= 2 ? "{}" : #"{"p":"\#(String(repeating: "p", count: bytes - 8))"}"#
        return try Outcome(id: id, key: ProcessInstanceKey(key)!, variables: Array(variables.utf8))
    }

    @Test func chainsPerKeyInOrderAndAFullWindowWaitsForAnAnswer() async throws {
        let queue = KeyedOutcomeQueue(maxCount: 3, maxBytes: 1 << 20)
        let a1 = try outcome("a1", 1)
        let a2 = try outcome("a2", 1)
        let b1 = try outcome("b1", 2)
        #expect(await queue.enqueue(a1) == .startChain)
        #expect(await queue.enqueue(a2) == .queued)
        #expect(await queue.enqueue(b1) == .startChain)
        #expect(queue.inFlight.count == 3)
        // the window is full: a3 waits until the chain of key 1 answered a1
        let a3 = try outcome("a3", 1)
        let waiting = Task { await queue.enqueue(a3) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(queue.inFlight.count == 3)
        #expect(queue.next(after: a1) == a2)
        #expect(await waiting.value == .queued)
        #expect(queue.next(after: a2) == a3)
        #expect(queue.next(after: a3) == nil)
        #expect(queue.next(after: b1) == nil)
        #expect(queue.inFlight == (0, 0))
        #expect(await queue.enqueue(try outcome("a4", 1)) == .startChain)
    }

    @Test func theWindowCountsBytes() async throws {
        let big = try outcome("big1", 1, bytes: 600)
        let second = try outcome("big2", 2, bytes: 600)
        let third = try outcome("big3", 3, bytes: 600)
        // room for two of them, not three
        let queue = KeyedOutcomeQueue(maxCount: 100, maxBytes: big.frameByteCount * 2 + 10)
        #expect(await queue.enqueue(big) == .startChain)
        #expect(await queue.enqueue(second) == .startChain)
        let waiting = Task { await queue.enqueue(third) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(queue.inFlight.count == 2)
        #expect(queue.next(after: big) == nil)
        #expect(await waiting.value == .startChain)
        #expect(queue.inFlight.bytes == second.frameByteCount + third.frameByteCount)
    }

    @Test func aWaitingEnqueueEndsWhenItsTaskIsCancelled() async throws {
        let queue = KeyedOutcomeQueue(maxCount: 1, maxBytes: 1 << 20)
        #expect(await queue.enqueue(try outcome("a1", 1)) == .startChain)
        let second = try outcome("a2", 2)
        let waiting = Task { await queue.enqueue(second) }
        try await Task.sleep(for: .milliseconds(100))
        waiting.cancel()
        #expect(await waiting.value == .cancelled)
        #expect(queue.inFlight.count == 1)
    }
}
