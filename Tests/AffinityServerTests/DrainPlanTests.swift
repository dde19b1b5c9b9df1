import Testing

@testable import AffinityServer

@Suite("DrainPlan")
struct DrainPlanTests {
    let start = ContinuousClock.now
    var deadline: ContinuousClock.Instant { start + .seconds(10) }

    func snapshot(deliveries: Int = 0, workers: Int = 0, connections: Int = 0) -> DrainPlan.Snapshot {
        DrainPlan.Snapshot(deliveries: deliveries, workers: workers, connections: connections)
    }

    @Test func waitsForDeliveriesThenWorkersThenDeliveriesThenClosesAndWaitsForConnections() {
        var plan = DrainPlan(deadline: deadline, workerGrace: .seconds(2))
        #expect(plan.observe(snapshot(deliveries: 3, workers: 1, connections: 4), now: start) == .none)
        #expect(plan.phase == .deliveries)
        #expect(plan.nextDeadline == deadline)
        let t1 = start + .milliseconds(300)
        #expect(plan.observe(snapshot(deliveries: 0, workers: 1, connections: 4), now: t1) == .none)
        #expect(plan.phase == .workers(graceEnds: t1 + .seconds(2)))
        #expect(plan.nextDeadline == t1 + .seconds(2))
        // the worker closed, but an outcome it sent is still being delivered
        #expect(plan.observe(snapshot(deliveries: 1, workers: 0, connections: 3), now: t1) == .none)
        #expect(plan.phase == .deliveriesAfterWorkers)
        #expect(plan.observe(snapshot(deliveries: 0, workers: 0, connections: 3), now: t1) == .closeEveryConnection)
        #expect(plan.phase == .connections)
        #expect(plan.observe(snapshot(connections: 1), now: t1) == .none)
        #expect(!plan.isFinished)
        #expect(plan.observe(snapshot(), now: t1) == .none)
        #expect(plan.isFinished)
        #expect(plan.nextDeadline == nil)
    }

    @Test func aWorkerThatStaysOpenIsWaitedForOnlyTheGracePeriod() {
        var plan = DrainPlan(deadline: deadline, workerGrace: .seconds(2))
        _ = plan.observe(snapshot(workers: 1, connections: 1), now: start)
        #expect(plan.observe(snapshot(workers: 1, connections: 1), now: start + .seconds(1)) == .none)
        #expect(plan.observe(snapshot(workers: 1, connections: 1), now: start + .seconds(2)) == .closeEveryConnection)
        #expect(plan.phase == .connections)
    }

    @Test func theGracePeriodEndsAtTheDeadlineAtTheLatest() {
        var plan = DrainPlan(deadline: deadline, workerGrace: .seconds(2))
        let late = start + .seconds(9)
        _ = plan.observe(snapshot(deliveries: 1, workers: 1, connections: 1), now: start)
        #expect(plan.observe(snapshot(workers: 1, connections: 1), now: late) == .none)
        #expect(plan.phase == .workers(graceEnds: deadline))
    }

    @Test func theDeadlineEndsEveryWait() {
        var plan = DrainPlan(deadline: deadline, workerGrace: .seconds(2))
        let busy = snapshot(deliveries: 5, workers: 2, connections: 9)
        #expect(plan.observe(busy, now: start) == .none)
        // deliveries never finish: at the deadline every connection is closed and the drain ends
        #expect(plan.observe(busy, now: deadline) == .closeEveryConnection)
        #expect(plan.isFinished)
    }

    @Test func anIdleReplicaDrainsAtOnce() {
        var plan = DrainPlan(deadline: deadline, workerGrace: .seconds(2))
        #expect(plan.observe(snapshot(), now: start) == .closeEveryConnection)
        #expect(plan.isFinished)
        #expect(plan.observe(snapshot(), now: start) == .none)
    }
}

@Suite("DrainSignal")
struct DrainSignalTests {
    @Test func aPokeBeforeArmingIsIgnoredAndAfterItWakesTheWaiter() async {
        let signal = DrainSignal()
        signal.poke()
        let started = ContinuousClock.now
        await signal.wait(until: started + .milliseconds(200))
        #expect(ContinuousClock.now - started >= .milliseconds(200), "woken by a poke before arm()")
        signal.arm()
        signal.poke()
        let again = ContinuousClock.now
        await signal.wait(until: again + .seconds(30))
        #expect(ContinuousClock.now - again < .seconds(5))
    }

    @Test func aWaiterIsWokenByAPokeFromAnotherTask() async {
        let signal = DrainSignal()
        signal.arm()
        let started = ContinuousClock.now
        async let poked: Void = {
            try? await Task.sleep(for: .milliseconds(100))
            signal.poke()
        }()
        await signal.wait(until: nil)
        await poked
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
