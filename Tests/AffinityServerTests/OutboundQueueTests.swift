import Testing

@testable import AffinityServer

@Suite("OutboundQueue")
struct OutboundQueueTests {
    @Test func theFirstFrameAfterAFlushSchedulesOneFlushAndABatchKeepsOrder() {
        var queue = OutboundQueue(budget: 100)
        #expect(queue.takeBatch() == nil)
        #expect(queue.enqueue([1]) == .enqueued(scheduleFlush: true))
        #expect(queue.enqueue([2, 2]) == .enqueued(scheduleFlush: false))
        #expect(queue.queuedBytes == 3)
        #expect(queue.takeBatch() == .init(frames: [[1], [2, 2]], close: nil, bytes: 3))
        #expect(queue.queuedBytes == 0)
        #expect(queue.unwrittenBytes == 3)
        #expect(queue.takeBatch() == nil)
        #expect(queue.enqueue([3]) == .enqueued(scheduleFlush: true))
    }

    @Test func bytesCountAgainstTheBudgetUntilTheirWriteCompleted() {
        var queue = OutboundQueue(budget: 10)
        #expect(queue.enqueue(Array(repeating: 0, count: 6)) == .enqueued(scheduleFlush: true))
        let batch = queue.takeBatch()
        #expect(batch?.bytes == 6)
        // taken by the flush but not written yet (the peer does not read): still counted
        #expect(queue.enqueue(Array(repeating: 0, count: 4)) == .enqueued(scheduleFlush: true))
        #expect(queue.enqueue([0]) == .overBudget(scheduleFlush: false))
        #expect(queue.isClosing)
        // the slow-consumer close replaces what was still queued
        #expect(queue.takeBatch() == .init(frames: [], close: OutboundQueue.slowConsumer, bytes: 0))
        #expect(OutboundQueue.slowConsumer.code == 1008)
    }

    @Test func completedWritesFreeTheBudget() {
        var queue = OutboundQueue(budget: 10)
        _ = queue.enqueue(Array(repeating: 0, count: 8))
        let batch = queue.takeBatch()!
        queue.written(batch.bytes)
        #expect(queue.unwrittenBytes == 0)
        #expect(queue.enqueue(Array(repeating: 0, count: 8)) == .enqueued(scheduleFlush: true))
    }

    @Test func aFrameLargerThanTheBudgetIsASlowConsumer() {
        var queue = OutboundQueue(budget: 10)
        #expect(queue.enqueue(Array(repeating: 0, count: 11)) == .overBudget(scheduleFlush: true))
        #expect(queue.enqueue([1]) == .closed)
    }

    @Test func closeComesAfterQueuedFramesAndOnlyOnce() {
        var queue = OutboundQueue(budget: 100)
        _ = queue.enqueue([7])
        #expect(queue.close(.init(code: 1001, reason: "draining")) == false)
        #expect(queue.isClosing)
        #expect(queue.enqueue([8]) == .closed)
        #expect(queue.takeBatch() == .init(frames: [[7]], close: .init(code: 1001, reason: "draining"), bytes: 1))
        #expect(queue.close(.init(code: 1008, reason: "again")) == false)
        #expect(queue.takeBatch() == nil)
    }

    @Test func closeOnAnIdleQueueSchedulesAFlush() {
        var queue = OutboundQueue(budget: 100)
        #expect(queue.close(.init(code: 1001, reason: "draining")) == true)
        #expect(queue.takeBatch() == .init(frames: [], close: .init(code: 1001, reason: "draining"), bytes: 0))
    }

    @Test func closeCanDropQueuedFrames() {
        var queue = OutboundQueue(budget: 100)
        _ = queue.enqueue([7])
        _ = queue.close(.init(code: 1008, reason: "x"), dropQueued: true)
        #expect(queue.takeBatch() == .init(frames: [], close: .init(code: 1008, reason: "x"), bytes: 0))
    }

    @Test func finishDropsEverythingAndWritesNothingMore() {
        var queue = OutboundQueue(budget: 100)
        _ = queue.enqueue([1])
        _ = queue.close(.init(code: 1001, reason: "draining"))
        queue.finish()
        #expect(queue.takeBatch() == nil)
        #expect(queue.enqueue([1]) == .closed)
        #expect(queue.close(.init(code: 1000, reason: "")) == false)
    }

    @Test func manyFramesKeepOrder() {
        var queue = OutboundQueue(budget: 1 << 20)
        for index in 0..<500 { _ = queue.enqueue([UInt8(index % 256), UInt8(index / 256)]) }
        let batch = queue.takeBatch()!
        let expected: [[UInt8]] = (0..<500).map { (index: Int) -> [UInt8] in [UInt8(index % 256), UInt8(index / 256)] }
        #expect(batch.frames == expected)
        #expect(batch.bytes == 1000)
    }
}
