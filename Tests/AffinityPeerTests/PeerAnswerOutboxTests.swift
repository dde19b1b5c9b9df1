import Testing

@testable import AffinityPeer

@Suite("Peer stream answer outbox")
struct PeerAnswerOutboxTests {
    @Test("answers posted while the writer is busy go out together, with the slots they hold")
    func batchesWhileBusy() async {
        let outbox = PeerAnswerOutbox<Int>()
        outbox.open()
        outbox.open()
        outbox.open()
        outbox.post(1, delivery: true)
        outbox.post(2, delivery: false)
        outbox.post(3, delivery: true)
        let first = await outbox.nextBatch()
        #expect(first?.answers == [1, 2, 3])
        #expect(first?.slots == 2)
        outbox.finishWhenIdle()
        // One delivery is still open: the writer waits for its answer before it ends.
        async let next = outbox.nextBatch()
        outbox.post(4, delivery: true)
        let second = await next
        #expect(second?.answers == [4])
        #expect(second?.slots == 1)
        #expect(await outbox.nextBatch() == nil)
    }

    @Test("a waiting writer is woken by the first answer and ends when finished and idle")
    func wakesAndEnds() async {
        let outbox = PeerAnswerOutbox<Int>()
        outbox.open()
        let writer = Task { () -> [[Int]] in
            var batches: [[Int]] = []
            while let batch = await outbox.nextBatch() { batches.append(batch.answers) }
            return batches
        }
        try? await Task.sleep(for: .milliseconds(50))
        outbox.post(7, delivery: true)
        try? await Task.sleep(for: .milliseconds(50))
        outbox.finishWhenIdle()
        #expect(await writer.value == [[7]])
    }

    @Test("cancelling the writer's task ends its wait")
    func cancellation() async {
        let outbox = PeerAnswerOutbox<Int>()
        outbox.open()
        let writer = Task { await outbox.nextBatch() == nil }
        try? await Task.sleep(for: .milliseconds(50))
        writer.cancel()
        #expect(await writer.value)
        // Cancelled before it waits: returns at once too.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await outbox.nextBatch() == nil
        }
        #expect(await early.value)
    }
}
