import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import EventLoopTimers

@Suite("Deadlines that share a timer per slot")
struct CoalescedDeadlinesTests {
    /// The elements that expired, in the order they did.
    private final class Expired: Sendable {
        private let names = Mutex<[String]>([])
        func append(_ name: String) { names.withLock { $0.append(name) } }
        var sorted: [String] { names.withLock { $0.sorted() } }
    }

    private func deadlines(on loop: NIOAsyncTestingEventLoop, _ expired: Expired) -> CoalescedDeadlines<String> {
        CoalescedDeadlines(eventLoop: loop, granularity: .milliseconds(10)) { expired.append($0) }
    }

    @Test("a deadline expires at the end of its slot, never before its delay")
    func expiresAtTheEndOfItsSlot() async throws {
        try await withTestingEventLoop { loop in
            let expired = Expired()
            let deadlines = deadlines(on: loop, expired)
            _ = deadlines.register("a", in: .milliseconds(25))
            _ = deadlines.register("exact", in: .milliseconds(40))
            await loop.advanceTime(to: .uptimeNanoseconds(30_000_000 - 1))
            #expect(expired.sorted == [])
            await loop.advanceTime(to: .uptimeNanoseconds(30_000_000))
            #expect(expired.sorted == ["a"])
            await loop.advanceTime(to: .uptimeNanoseconds(40_000_000 - 1))
            #expect(expired.sorted == ["a"])
            await loop.advanceTime(to: .uptimeNanoseconds(40_000_000))
            #expect(expired.sorted == ["a", "exact"])
        }
    }

    @Test("deadlines in one slot share one timer; the next slot has its own")
    func oneTimerPerSlot() async throws {
        try await withTestingEventLoop { loop in
            let expired = Expired()
            let deadlines = deadlines(on: loop, expired)
            _ = deadlines.register("a", in: .milliseconds(21))
            _ = deadlines.register("b", in: .milliseconds(29))
            _ = deadlines.register("c", in: .milliseconds(30))
            #expect(deadlines.armedTimers == 1)
            _ = deadlines.register("d", in: .milliseconds(31))
            #expect(deadlines.armedTimers == 2)
            await loop.advanceTime(to: .uptimeNanoseconds(30_000_000))
            #expect(expired.sorted == ["a", "b", "c"])
            #expect(deadlines.armedTimers == 1)
            await loop.advanceTime(to: .uptimeNanoseconds(40_000_000))
            #expect(expired.sorted == ["a", "b", "c", "d"])
            #expect(deadlines.armedTimers == 0)
        }
    }

    @Test("a cancelled deadline does not expire; the others of its slot do")
    func cancelled() async throws {
        try await withTestingEventLoop { loop in
            let expired = Expired()
            let deadlines = deadlines(on: loop, expired)
            let cancelled = deadlines.register("cancelled", in: .milliseconds(5))
            _ = deadlines.register("kept", in: .milliseconds(6))
            let alone = deadlines.register("alone", in: .milliseconds(15))
            deadlines.cancel(cancelled)
            deadlines.cancel(alone)
            await loop.advanceTime(by: .seconds(1))
            #expect(expired.sorted == ["kept"])
            deadlines.cancel(cancelled)
            #expect(expired.sorted == ["kept"])
        }
    }

    @Test("a slot emptied by cancellations keeps its timer: a later deadline in it arms none and still expires")
    func emptiedSlotKeepsItsTimer() async throws {
        try await withTestingEventLoop { loop in
            let expired = Expired()
            let deadlines = deadlines(on: loop, expired)
            deadlines.cancel(deadlines.register("cancelled", in: .milliseconds(25)))
            #expect(deadlines.armedTimers == 1)
            _ = deadlines.register("later", in: .milliseconds(22))
            #expect(deadlines.armedTimers == 1)
            await loop.advanceTime(to: .uptimeNanoseconds(30_000_000))
            #expect(expired.sorted == ["later"])
            #expect(deadlines.armedTimers == 0)
        }
    }

    @Test("expireAll expires every registered deadline at once, and their timers find nothing later")
    func expireAll() async throws {
        try await withTestingEventLoop { loop in
            let expired = Expired()
            let deadlines = deadlines(on: loop, expired)
            _ = deadlines.register("a", in: .seconds(1))
            _ = deadlines.register("b", in: .seconds(2))
            deadlines.cancel(deadlines.register("cancelled", in: .seconds(1)))
            deadlines.expireAll()
            #expect(expired.sorted == ["a", "b"])
            await loop.advanceTime(by: .seconds(3))
            #expect(expired.sorted == ["a", "b"])
        }
    }
}
