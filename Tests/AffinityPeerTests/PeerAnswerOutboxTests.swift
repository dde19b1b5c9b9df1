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

@Suite("Peer stream answer outbox, abandoned")
struct PeerAnswerOutboxAbandonTests {
    @Test("an abandoned outbox hands back the slots of queued answers and refuses later ones")
    func abandon() async {
        let outbox = PeerAnswerOutbox<Int>()
        outbox.open()
        outbox.open()
        outbox.open()
        #expect(outbox.post(1, delivery: true))
        #expect(outbox.post(2, delivery: false))
        #expect(outbox.abandon() == 1)
        // A later answer is refused: its delivery gives the slot back itself.
        #expect(!outbox.post(3, delivery: true))
        #expect(await outbox.nextBatch() == nil)
    }

    @Test("abandoning wakes a waiting writer with nil")
    func abandonWakesWriter() async {
        let outbox = PeerAnswerOutbox<Int>()
        outbox.open()
        let writer = Task { await outbox.nextBatch() == nil }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(outbox.abandon() == 0)
        #expect(await writer.value)
    }

    @Test("slots given back in bulk wake the waiting reader")
    func bulkRelease() async {
        let slots = PeerDeliverySlots(limit: 2)
        await slots.acquire()
        await slots.acquire()
        let reader = Task {
            await slots.acquire()
            await slots.acquire()
            return true
        }
        try? await Task.sleep(for: .milliseconds(50))
        slots.release(2)
        #expect(await reader.value)
    }
}
