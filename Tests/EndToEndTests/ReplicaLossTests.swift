import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization
import Testing
import ZeebeTestGateway

extension EndToEndTests {
    /// How a replica is lost.
    enum ReplicaLoss: String, Sendable, CustomTestStringConvertible {
        /// `kill -9`: connections drop, nothing is drained. The replica is frozen (SIGSTOP) first until
        /// worker 0 has at least 8 outcomes sent to it waiting for an answer
        /// (`affinity_publisher_pending_outcomes`), so that the kill provably cuts deliveries in flight.
        /// (Jobs activated and not yet completed are no such proof: their outcome may have been answered
        /// already, with the job's completion still on its way to Zeebe.)
        case kill9
        /// SIGTERM: the replica drains (tells its clients `drain`, lets deliveries finish or park) and
        /// exits 0.
        case drain

        var testDescription: String { rawValue }
    }

    /// Losing a replica while hundreds of requests are in flight loses no outcome and mixes none up.
    @Suite("replica loss under load")
    struct ReplicaLossTests {
        /// 300 concurrent requests through both front-ends; after 60 answers replica r1, which holds
        /// front-end 0 and worker 0, is killed or drained with the other requests counted pending. Every
        /// request still answers with its own outcome: front-end 0 reconnects to another replica and
        /// re-subscribes its pending keys (outcomes r1 could not hand over are parked in Redis and taken on
        /// re-subscribe); worker 0 reconnects too, and the jobs whose delivery was cut are failed (never
        /// completed) and activated again by Zeebe, then completed.
        @Test(arguments: [ReplicaLoss.kill9, .drain])
        func everyRequestGetsItsOwnOutcomeWhenAReplicaIsLost(_ loss: ReplicaLoss) async throws {
            try await withAffinityStack { stack in
                let count = 300
                let lostAfter = 60
                let lost = stack.replicas[0]
                let worker = stack.workers[0]
                let exitStatus = ExitStatusBox()
                let stuckDeliveries = ExitStatusBox()
                let result = try await sendOrders(
                    stack, count: count, label: "\(loss)",
                    disruption: LoadDisruption(afterAnswers: lostAfter) { progress in
                        let snapshot: LoadSnapshot
                        switch loss {
                        case .kill9:
                            lost.signal(SIGSTOP)
                            var inFlight = 0
                            _ = await eventually(timeout: .seconds(30)) {
                                inFlight = (try? await stack.outcomesAwaitingAnswer(worker)) ?? 0
                                return inFlight >= 8
                            }
                            stuckDeliveries.set(Int32(inFlight))
                            snapshot = progress.now
                            lost.signal(SIGKILL)
                        case .drain:
                            snapshot = progress.now
                            lost.signal(SIGTERM)
                        }
                        exitStatus.set(await lost.waitForExit(timeout: .seconds(40)))
                        return snapshot
                    })
                let atLoss = try #require(result.atDisruption)
                #expect(atLoss.answered >= lostAfter)
                #expect(atLoss.pending >= 50, "r1 was lost with only \(atLoss.pending) requests pending")
                switch loss {
                case .kill9:
                    #expect(exitStatus.value != nil, "r1 did not die")
                    #expect(
                        (stuckDeliveries.value ?? 0) >= 8,
                        "worker 0 had \(stuckDeliveries.value ?? 0) outcomes awaiting an answer")
                case .drain:
                    #expect(exitStatus.value == 0, "r1 did not drain and exit 0:\n\(lost.log)")
                }
                let engine = try await expectOwnOutcomes(result, count: count, stack: stack)
                // Front-end 0 and worker 0 were on r1, lost it and carried on with another replica.
                let lostLine =
                    loss == .kill9
                    ? "connection to the affinity service lost" : "replica is draining; moving to another"
                for child in [stack.demos[0], worker] {
                    #expect(child.log.contains("affinity.replica=r1"), "\(child.name):\n\(child.log)")
                    #expect(child.log.contains(lostLine), "\(child.name):\n\(child.log)")
                    let after = child.log.components(separatedBy: lostLine).last ?? ""
                    #expect(
                        after.contains("affinity.replica=r2") || after.contains("affinity.replica=r3"),
                        "\(child.name):\n\(child.log)")
                }
                // Jobs whose outcome could not be delivered were failed with the worker's message (never
                // completed without an acknowledgement), or handed back unread by the job stream once the
                // connection was lost, and completed on a later attempt.
                let retried = engine.jobs.filter { $0.type == "publish-outcome" && !$0.failures.isEmpty }
                switch loss {
                case .kill9:
                    #expect(!retried.isEmpty, "the kill cut deliveries in flight, so some jobs were failed")
                case .drain:
                    // r1 says `drain` to worker 0 first and answers what it already sent; the worker closes
                    // once answered and publishes on another replica meanwhile, so no job fails
                    #expect(retried.isEmpty, "a drain failed \(retried.count) jobs: \(retried.prefix(3))")
                }
                #expect(retried.allSatisfy { $0.state == .completed })
                #expect(
                    retried.flatMap(\.failures).allSatisfy {
                        $0.message.contains("outcome not acknowledged by the affinity service")
                            || $0.message.contains("it cannot take jobs now")
                    })
                let frozen =
                    loss == .kill9 ? " worker 0 had \(stuckDeliveries.value ?? 0) outcomes awaiting an answer;" : ""
                print(
                    "replica loss \(loss): r1 lost with \(atLoss.answered) answered and \(atLoss.pending) pending;"
                        + frozen + " \(retried.count) publish-outcome jobs were failed and retried")
                for replica in stack.replicas[1...] {
                    #expect(replica.isRunning, "\(replica.name):\n\(replica.log)")
                }
            }
        }
    }
}

/// A value the disruption saw (an exit status, a count), read after the load.
final class ExitStatusBox: Sendable {
    private let status = Mutex<Int32?>(nil)
    func set(_ value: Int32?) { status.withLock { $0 = value } }
    var value: Int32? { status.withLock { $0 } }
}
