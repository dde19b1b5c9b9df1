import Testing

@testable import AffinityServer

@Suite("OutboundQueue")
struct OutboundQueueTests {
    @Test func deliversInOrderAndWakesAWaitingWriter() {
        var queue = OutboundQueue(budget: 100)
        #expect(queue.next() == .wait)
        #expect(queue.writerWaiting)
        #expect(queue.enqueue([1]) == .enqueued(wakeWriter: true))
        #expect(queue.enqueue([2, 2]) == .enqueued(wakeWriter: false))
        #expect(queue.queuedBytes == 3)
        #expect(queue.next() == .item(.frame([1])))
        #expect(queue.next() == .item(.frame([2, 2])))
        #expect(queue.queuedBytes == 0)
        #expect(queue.next() == .wait)
    }

    @Test func overBudgetBecomesSlowConsumerClose() {
        var queue = OutboundQueue(budget: 10)
        #expect(queue.enqueue(Array(repeating: 0, count: 6)) == .enqueued(wakeWriter: false))
        #expect(queue.enqueue(Array(repeating: 0, count: 5)) == .overBudget(wakeWriter: false))
        #expect(queue.enqueue([1]) == .closed)
        #expect(queue.next() == .item(.close(OutboundQueue.slowConsumer)))
        #expect(queue.next() == .finished)
        #expect(OutboundQueue.slowConsumer.code == 1008)
    }

    @Test func closeComesAfterQueuedFrames() {
        var queue = OutboundQueue(budget: 100)
        _ = queue.enqueue([7])
        #expect(queue.close(.init(code: 1001, reason: "draining")) == false)
        #expect(queue.isClosing)
        #expect(queue.enqueue([8]) == .closed)
        #expect(queue.next() == .item(.frame([7])))
        #expect(queue.next() == .item(.close(.init(code: 1001, reason: "draining"))))
        #expect(queue.next() == .finished)
    }

    @Test func closeCanDropQueuedFrames() {
        var queue = OutboundQueue(budget: 100)
        _ = queue.enqueue([7])
        _ = queue.close(.init(code: 1008, reason: "x"), dropQueued: true)
        #expect(queue.next() == .item(.close(.init(code: 1008, reason: "x"))))
    }

    @Test func finishEndsTheWriter() {
        var queue = OutboundQueue(budget: 100)
        #expect(queue.next() == .wait)
        #expect(queue.finish() == true)
        #expect(queue.next() == .finished)
        #expect(queue.finish() == false)
        #expect(queue.enqueue([1]) == .closed)
    }

    @Test func manyFramesKeepOrder() {
        var queue = OutboundQueue(budget: 1 << 20)
        for index in 0..<500 { _ = queue.enqueue([UInt8(index % 256), UInt8(index / 256)]) }
        for index in 0..<500 {
            #expect(queue.next() == .item(.frame([UInt8(index % 256), UInt8(index / 256)])))
        }
        #expect(queue.next() == .wait)
    }
}
