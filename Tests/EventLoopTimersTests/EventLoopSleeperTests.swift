import NIOCore
import NIOEmbedded
import Testing

@testable import EventLoopTimers

@Suite("A sleep on an event loop timer")
struct EventLoopSleeperTests {
    /// Waits until `sleeper`'s task has armed its timer (the loop's time stands still meanwhile).
    private func untilSleeping(_ sleeper: EventLoopSleeper) async {
        while !sleeper.isSleeping { await Task.yield() }
    }

    @Test("returns when its time has passed on the loop, not a nanosecond before")
    func firesAtTheDeadline() async throws {
        try await withTestingEventLoop { loop in
            let sleeper = EventLoopSleeper(eventLoop: loop)
            let sleep = Task { try await sleeper.sleep(for: .seconds(10)) }
            await untilSleeping(sleeper)
            await loop.advanceTime(by: .seconds(10) - .nanoseconds(1))
            #expect(sleeper.isSleeping)
            await loop.advanceTime(by: .nanoseconds(1))
            #expect(!sleeper.isSleeping)
            try await sleep.value
        }
    }

    @Test("a cancelled sleep throws CancellationError at once, and its timer does not wake the next sleep")
    func cancelled() async throws {
        try await withTestingEventLoop { loop in
            let sleeper = EventLoopSleeper(eventLoop: loop)
            let first = Task { try await sleeper.sleep(for: .seconds(10)) }
            await untilSleeping(sleeper)
            first.cancel()
            await #expect(throws: CancellationError.self) { try await first.value }
            #expect(!sleeper.isSleeping)

            let second = Task { try await sleeper.sleep(for: .seconds(20)) }
            await untilSleeping(sleeper)
            await loop.advanceTime(by: .seconds(10))
            #expect(sleeper.isSleeping)
            await loop.advanceTime(by: .seconds(10))
            try await second.value
        }
    }

    @Test("a task cancelled before it sleeps throws CancellationError without waiting")
    func cancelledBefore() async throws {
        try await withTestingEventLoop { loop in
            let sleeper = EventLoopSleeper(eventLoop: loop)
            let sleep = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                try await sleeper.sleep(for: .seconds(10))
            }
            await #expect(throws: CancellationError.self) { try await sleep.value }
            #expect(!sleeper.isSleeping)
        }
    }

    @Test("wake ends the sleep in progress early; the next sleep waits its full time")
    func wakeEndsOneSleep() async throws {
        try await withTestingEventLoop { loop in
            let sleeper = EventLoopSleeper(eventLoop: loop)
            sleeper.wake()
            let first = Task { try await sleeper.sleep(for: .seconds(3600)) }
            await untilSleeping(sleeper)
            sleeper.wake()
            try await first.value
            #expect(loop.now == .uptimeNanoseconds(0))

            let second = Task { try await sleeper.sleep(for: .seconds(1)) }
            await untilSleeping(sleeper)
            await loop.advanceTime(by: .seconds(1) - .nanoseconds(1))
            #expect(sleeper.isSleeping)
            await loop.advanceTime(by: .nanoseconds(1))
            try await second.value
        }
    }

    @Test("stop wakes the sleep in progress early, and later sleeps return at once")
    func stopWakesEarly() async throws {
        try await withTestingEventLoop { loop in
            let sleeper = EventLoopSleeper(eventLoop: loop)
            let sleep = Task { try await sleeper.sleep(for: .seconds(3600)) }
            await untilSleeping(sleeper)
            sleeper.stop()
            try await sleep.value
            try await sleeper.sleep(for: .seconds(3600))
            #expect(loop.now == .uptimeNanoseconds(0))
        }
    }
}
