import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Losing the replica a WORKER is connected to while outcomes are in flight.
    @Suite("worker failover")
    struct WorkerFailoverTests {
        static let firstKey: Int64 = 2_251_799_813_695_000

        /// A client on r1 holds 40 keys; a worker on r2 delivers 1200 outcomes for them. After 300 answers r2
        /// is killed with SIGKILL or drained with SIGTERM. The worker moves to r3 and sends again every outcome
        /// it has no answer for (a real worker fails the job and Zeebe hands it out again, same key). Every
        /// outcome ends answered `delivered`, and the client on r1 receives every one, none for a wrong key.
        /// With a drain the worker sees no error and has nothing to send again (the replica answers what was
        /// sent before the worker leaves), and r2 exits 0.
        @Test(.timeLimit(.minutes(5)), arguments: FailoverTests.Stop.allCases)
        func losingTheWorkersReplicaLosesNoOutcome(_ stop: FailoverTests.Stop) async throws {
            try await withClusterEnvironment { cluster in
                let (r1, r2, r3) = try await cluster.startThree()
                let (keys, outcomes) = try outcomeLoad(
                    firstKey: Self.firstKey, keys: 40, outcomes: 1200, idPrefix: "wjob")
                let ledger = OutcomeLedger()
                let (subscribed, subscribedSignal) = AsyncStream.makeStream(of: Void.self)
                let clientPort = try r1.port
                let workerPorts = [try r2.port, try r3.port]

                let report = try await withThrowingTaskGroup(of: WorkerReport?.self) { group in
                    group.addTask {
                        try await withClusterSocket(port: clientPort) { client in
                            _ = try await client.hello(role: .client, clientId: "front")
                            try await subscribe(client, to: keys)
                            subscribedSignal.yield()
                            subscribedSignal.finish()
                            try await receive(client, into: ledger) { ledger.received.count == outcomes.count }
                        }
                        return nil
                    }
                    group.addTask {
                        for await _ in subscribed { break }
                        return try await deliverAcrossReplicas(outcomes, ports: workerPorts, window: 40) { count in
                            guard count == 300 else { return }
                            switch stop {
                            case .kill9: await r2.kill9()
                            case .sigterm: r2.signal(SIGTERM)
                            }
                        }
                    }
                    var report: WorkerReport?
                    for try await result in group { report = report ?? result }
                    return try #require(report)
                }

                #expect(report.answers.count == outcomes.count)
                let notDelivered = report.answers.filter { $0.value != DeliveryStatus.delivered.rawValue }
                #expect(notDelivered.isEmpty, "the client was subscribed throughout: \(notDelivered.prefix(5))")
                #expect(report.answeredBy[0] >= 300, "r2 answered until it went away: \(report.answeredBy)")
                #expect(report.answeredBy[1] > 0, "the rest went through r3: \(report.answeredBy)")
                let received = ledger.received
                #expect(received.count == outcomes.count, "every outcome reached the client on r1")
                let wrongKey = received.filter { id, key in outcomes.first { $0.id == id }?.key != key }
                #expect(wrongKey.isEmpty)
                switch stop {
                case .kill9:
                    // about 40 were in flight when r2 died; their jobs come back and are delivered (duplicates
                    // reach the client with the same id, which it de-duplicates)
                    #expect(report.resent > 0, "outcomes were in flight when r2 died (the resend path ran)")
                    #expect(await r2.waitForExit(timeout: .seconds(30)) != nil)
                case .sigterm:
                    #expect(report.drainSeen, "r2 told the worker to drain")
                    #expect(report.errors.isEmpty, "a drain answers the worker without errors: \(report.errors)")
                    #expect(report.resent == 0, "nothing sent to the draining replica went unanswered")
                    #expect(await r2.waitForExit(timeout: .seconds(30)) == 0, "\(r2.log)")
                }
            }
        }
    }
}

/// What a worker saw while delivering across replicas.
struct WorkerReport: Sendable {
    /// The final answer per outcome id: `delivered` or `parked`.
    var answers: [String: String] = [:]
    /// Error answers per outcome id (the outcome was sent again).
    var errors: [String: String] = [:]
    /// Outcomes sent again because their connection went away before an answer.
    var resent = 0
    /// Answers received through each port, in the order of the ports.
    var answeredBy: [Int] = []
    /// Whether a replica said `drain`.
    var drainSeen = false
}

/// Delivers `outcomes` like a job worker: through the first port until that replica goes away, then through
/// the next. Outcomes without an answer when a connection ends, and outcomes answered with an error, are
/// sent again (Zeebe would hand their jobs out again). On `drain` it sends nothing new on that connection,
/// waits for the answers to what it sent, and closes the connection itself.
func deliverAcrossReplicas(
    _ outcomes: [Outcome], ports: [Int], window: Int, afterEachAnswer: @escaping @Sendable (Int) async -> Void
) async throws -> WorkerReport {
    var report = WorkerReport(answeredBy: Array(repeating: 0, count: ports.count))
    var queue = outcomes
    for (index, port) in ports.enumerated() where report.answers.count < outcomes.count {
        let start = report
        let toSend = queue
        let total = outcomes.count
        let (partial, unsent) = try await withClusterSocket(port: port) { worker in
            var report = start
            var queue = toSend[...]
            var inFlight: [String: Outcome] = [:]
            var draining = false
            _ = try await worker.hello(role: .worker, clientId: "worker")
            while report.answers.count < total {
                while !draining, inFlight.count < window, let next = queue.popFirst() {
                    worker.send(.outcome(next))
                    inFlight[next.id] = next
                }
                if draining && inFlight.isEmpty { break }
                let message: AffinityMessage
                do {
                    message = try await worker.next(timeout: .seconds(60))
                } catch {
                    guard worker.isClosed else { throw error }
                    break
                }
                switch message {
                case .result(let id, let status):
                    guard inFlight.removeValue(forKey: id) != nil else { continue }
                    report.answers[id] = status.rawValue
                    report.answeredBy[index] += 1
                    await afterEachAnswer(report.answers.count)
                case .error(let code, _, let ref?):
                    guard let outcome = inFlight.removeValue(forKey: ref) else { continue }
                    report.errors[ref] = code.rawValue
                    queue.append(outcome)
                case .drain:
                    draining = true
                    report.drainSeen = true
                case let other:
                    throw FixtureError("expected a result, got \(other)")
                }
            }
            report.resent += inFlight.count
            return (report, Array(inFlight.values) + Array(queue))
        }
        report = partial
        queue = unsent
    }
    return report
}
