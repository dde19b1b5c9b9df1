import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Losing a replica while outcomes are in flight: nothing answered `delivered` or `parked` is lost.
    @Suite("failover")
    struct FailoverTests {
        static let firstKey: Int64 = 2_251_799_813_690_000

        enum Stop: String, CaseIterable, Sendable {
            /// SIGKILL: a crash.
            case kill9
            /// SIGTERM: a graceful drain.
            case sigterm
        }

        /// A client on r1 holds 40 keys; a worker on r2 delivers 1200 outcomes for them. After 300 answers r1 is
        /// killed with SIGKILL, or drained with SIGTERM. The client reconnects to r3, says hello with the same
        /// clientId, subscribes again, and in the end has received every outcome the worker saw answered
        /// `delivered` or `parked`. With a drain, the worker sees no error at all and r1 exits 0.
        @Test(.timeLimit(.minutes(5)), arguments: Stop.allCases)
        func losingTheOwnerLosesNoAcknowledgedOutcome(_ stop: Stop) async throws {
            try await withClusterEnvironment { cluster in
                let (r1, r2, r3) = try await cluster.startThree()
                let (keys, outcomes) = try outcomeLoad(
                    firstKey: Self.firstKey, keys: 40, outcomes: 1200, idPrefix: "job")
                let ledger = OutcomeLedger()
                let (subscribed, subscribedSignal) = AsyncStream.makeStream(of: Void.self)

                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // the client: on r1 until it dies, then on r3 until it has every acknowledged outcome
                        let firstPort = try r1.port
                        try await withClusterSocket(port: firstPort) { client in
                            _ = try await client.hello(role: .client, clientId: "front")
                            try await subscribe(client, to: keys)
                            subscribedSignal.yield()
                            subscribedSignal.finish()
                            try await receiveUntilClosed(client, into: ledger)
                        }
                        let receivedOnFirstReplica = ledger.received.count
                        #expect(receivedOnFirstReplica < outcomes.count, "r1 went away while outcomes were in flight")
                        let secondPort = try r3.port
                        try await withClusterSocket(port: secondPort) { client in
                            #expect(try await client.hello(role: .client, clientId: "front") == "r3")
                            for key in keys { client.send(.subscribe(key: key)) }
                            try await receive(client, into: ledger) { ledger.everyAcknowledgedOutcomeReceived }
                        }
                    }
                    group.addTask {
                        for await _ in subscribed { break }
                        let workerPort = try r2.port
                        let result = try await withClusterSocket(port: workerPort) { worker in
                            _ = try await worker.hello(role: .worker, clientId: "worker")
                            return try await deliver(outcomes, through: worker, window: 40) { count in
                                guard count == 300 else { return }
                                switch stop {
                                case .kill9: await r1.kill9()
                                case .sigterm: r1.signal(SIGTERM)
                                }
                            }
                        }
                        ledger.finish(with: result)
                    }
                    try await group.waitForAll()
                }

                let finalAnswers = try #require(ledger.answers)
                let got = ledger.received
                #expect(finalAnswers.count == outcomes.count)
                let acknowledged = finalAnswers.filter { $0.value == "delivered" || $0.value == "parked" }
                let parked = finalAnswers.values.filter { $0 == "parked" }.count
                #expect(
                    acknowledged.count > 800, "most outcomes are answered delivered or parked: \(acknowledged.count)")
                if stop == .kill9 {
                    #expect(parked > 0, "outcomes for the crashed owner were parked (the failover path ran)")
                } else {
                    let errors = finalAnswers.filter { $0.value != "delivered" && $0.value != "parked" }
                    #expect(errors.isEmpty, "a drain answers workers without errors: \(errors.prefix(5))")
                    #expect(await r1.waitForExit(timeout: .seconds(30)) == 0, "\(r1.log)")
                }
                #expect(
                    acknowledged.keys.allSatisfy { got[$0] != nil }, "every acknowledged outcome reached the client")
                let wrongKey = got.filter { id, key in outcomes.first { $0.id == id }?.key != key }
                #expect(wrongKey.isEmpty)
                #expect(await r1.waitForExit(timeout: .seconds(30)) != nil)
            }
        }

        /// The owner of a key dies (SIGKILL) and its registration goes (its lease ran out) while the key's route,
        /// which lives longer, still names it. r2 finds no address for the owner (the pool's directory does not
        /// list it: `unresolved`) and parks the outcome, since the route still names the owner; the worker is
        /// answered `parked`, and the client, subscribing again on r3, receives it.
        @Test(.timeLimit(.minutes(2)))
        func anOwnerGoneFromTheRegistryHasItsOutcomesParked() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2", arguments: ["--log-level", "debug"])
                let r3 = try await cluster.start(id: "r3")
                let key = ProcessInstanceKey(Self.firstKey + 5_000)!
                let outcome = try Outcome(id: "job-unregistered", key: key, variables: Array(#"{"ok":true}"#.utf8))
                try await withClusterSocket(port: try r1.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    try await subscribe(client, to: [key])
                    // the owner dies with its client subscribed: the route stays
                    await r1.kill9()
                }
                #expect(try await cluster.redis.command("DEL", "affinity:replica:{r1}") == "1")
                #expect(try await cluster.redis.command("EXISTS", "affinity:{\(key)}:route") == "1")

                try await withClusterSocket(port: try r2.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker")
                    #expect(try await deliver([outcome], through: worker, window: 1) == ["job-unregistered": "parked"])
                }
                #expect(r2.log.contains("unresolved: replica r1 is not registered"), "r2 did not look r1 up")

                try await withClusterSocket(port: try r3.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    client.send(.subscribe(key: key))
                    #expect(try await client.next() == .subscribed(key: key))
                    #expect(try await client.next() == .outcome(outcome))
                    client.send(.ack(id: outcome.id))
                }
            }
        }

        /// The owner restarts under its id at another peer address (a pod with a new IP), after r2 forwarded to its
        /// old one. r2's pool finds the new address in the registry, closes the old address's connection, and the
        /// next outcome is delivered to the client on the restarted owner: forwards follow a replica that rejoins.
        @Test(.timeLimit(.minutes(2)))
        func anOwnerRestartedAtANewAddressReceivesForwardsThere() async throws {
            try await withClusterEnvironment { cluster in
                let old = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2", arguments: ["--log-level", "debug"])
                let key = ProcessInstanceKey(Self.firstKey + 6_000)!
                let before = try Outcome(id: "job-before", key: key, variables: Array(#"{"n":1}"#.utf8))
                let after = try Outcome(id: "job-after", key: key, variables: Array(#"{"n":2}"#.utf8))
                try await withClusterSocket(port: try old.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    try await subscribe(client, to: [key])
                    try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        async let received = receiveAndAck(client, count: 1)
                        #expect(try await deliver([before], through: worker, window: 1) == ["job-before": "delivered"])
                        #expect(try await received == ["job-before": key])
                    }
                    await old.kill9()
                }

                // a new peer port: it registers once the old registration's lease ran out
                let restarted = try await cluster.launch(id: "r1")
                #expect(restarted.peerPort != old.peerPort)
                try await restarted.waitForPort()
                try await restarted.waitForLog("registered replica", timeout: .seconds(40))
                try await waitForReadiness(of: restarted, status: 200)

                try await withClusterSocket(port: try restarted.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    try await subscribe(client, to: [key])
                    try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        async let received = receiveAndAck(client, count: 1)
                        #expect(try await deliver([after], through: worker, window: 1) == ["job-after": "delivered"])
                        #expect(try await received == ["job-after": key])
                    }
                }
                let closed = r2.log.split(separator: "\n").filter { $0.contains("peer connection closed") }
                #expect(closed.count == 1, "r2 closes the old address's connection once: \(closed)")
                #expect(closed.first?.contains(":\(old.peerPort)") == true, "the closed one is the old address")
            }
        }
    }
}

/// Acks and records every outcome until the socket closes; other messages are ignored.
func receiveUntilClosed(_ socket: ClusterSocket, into ledger: OutcomeLedger) async throws {
    while true {
        let message: AffinityMessage
        do {
            message = try await socket.next(timeout: .seconds(60))
        } catch {
            guard socket.isClosed else { throw error }
            return
        }
        if case .outcome(let outcome) = message {
            socket.send(.ack(id: outcome.id))
            ledger.record(outcome)
        }
    }
}

/// Acks and records every outcome until `done()` holds (checked after every message and every quiet second).
func receive(
    _ socket: ClusterSocket, into ledger: OutcomeLedger, until done: () -> Bool
) async throws {
    let deadline = ContinuousClock.now + .seconds(120)
    while !done() {
        guard ContinuousClock.now < deadline else { throw FixtureError("not every acknowledged outcome arrived") }
        guard let message = try? await socket.next(timeout: .seconds(1)) else {
            if socket.isClosed { throw FixtureError("the socket closed") }
            continue
        }
        if case .outcome(let outcome) = message {
            socket.send(.ack(id: outcome.id))
            ledger.record(outcome)
        }
    }
}
