import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Redis goes away and comes back while replicas serve clients and workers.
    @Suite("Redis outage")
    struct RedisOutageTests {
        static let firstKey: Int64 = 2_251_799_813_695_000

        /// Redis with an append-only file is killed and started again on the same port. While it is down, the
        /// replicas are not ready (but live), outcomes for a client on the worker's own replica are still
        /// delivered, and the others are answered `unavailable` at once (no hang). Afterwards deliveries
        /// resume, and the outcomes parked before the outage reach a client that subscribes: nothing answered
        /// `delivered` or `parked` is lost.
        @Test(.timeLimit(.minutes(3)))
        func redisRestartLosesNoAcknowledgedOutcome() async throws {
            try await withClusterEnvironment(redisArguments: ["--appendonly", "yes", "--appendfsync", "always"]) {
                cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let remoteKeys = (0..<20).map { ProcessInstanceKey(Self.firstKey + Int64($0))! }
                let localKeys = (20..<25).map { ProcessInstanceKey(Self.firstKey + Int64($0))! }
                let parkedKeys = (25..<30).map { ProcessInstanceKey(Self.firstKey + Int64($0))! }
                func outcomes(_ keys: [ProcessInstanceKey], _ count: Int, _ tag: String) throws -> [Outcome] {
                    try (0..<count).map { index in
                        try Outcome(
                            id: "\(tag)-\(index)", key: keys[index % keys.count],
                            variables: Array(#"{"i":\#(index)}"#.utf8))
                    }
                }
                let before = try outcomes(remoteKeys, 100, "before")
                let parked = try outcomes(parkedKeys, 10, "parked")
                let duringRemote = try outcomes(remoteKeys, 20, "during-remote")
                let duringLocal = try outcomes(localKeys, 10, "during-local")
                let after = try outcomes(remoteKeys, 100, "after")
                let ledger = OutcomeLedger()

                try await withClusterSocket(port: try r1.port) { remoteClient in
                    try await withClusterSocket(port: try r2.port) { localClient in
                        try await withClusterSocket(port: try r2.port) { worker in
                            _ = try await remoteClient.hello(role: .client, clientId: "front-remote")
                            _ = try await localClient.hello(role: .client, clientId: "front-local")
                            _ = try await worker.hello(role: .worker, clientId: "worker")
                            try await subscribe(remoteClient, to: remoteKeys)
                            try await subscribe(localClient, to: localKeys)
                            async let remoteReceiver: Void = receive(remoteClient, into: ledger) {
                                (before + after).allSatisfy { ledger.received[$0.id] != nil }
                            }
                            async let localReceiver: Void = receive(localClient, into: ledger) {
                                localKeys.count > 0 && duringLocal.allSatisfy { ledger.received[$0.id] != nil }
                            }

                            let beforeAnswers = try await deliver(before, through: worker, window: 20)
                            #expect(beforeAnswers.values.allSatisfy { $0 == "delivered" })
                            let parkedAnswers = try await deliver(parked, through: worker, window: 10)
                            #expect(parkedAnswers.values.allSatisfy { $0 == "parked" })

                            cluster.redis.stop()
                            try await waitForReadiness(of: r2, status: 503)
                            #expect(try await httpGet(port: try r2.port, path: "/health/live").status == 200)
                            let started = ContinuousClock.now
                            let remoteAnswers = try await deliver(duringRemote, through: worker, window: 20)
                            let elapsed = ContinuousClock.now - started
                            #expect(remoteAnswers.values.allSatisfy { $0 == "unavailable" }, "\(remoteAnswers)")
                            #expect(elapsed < .seconds(3), "answered at once, not after a timeout: \(elapsed)")
                            let localAnswers = try await deliver(duringLocal, through: worker, window: 10)
                            #expect(localAnswers.values.allSatisfy { $0 == "delivered" }, "\(localAnswers)")
                            try await localReceiver

                            try await cluster.redis.start()
                            try await waitForReadiness(of: r2, status: 200)
                            try await waitForReadiness(of: r1, status: 200)
                            let afterAnswers = try await deliver(after, through: worker, window: 20)
                            #expect(afterAnswers.values.allSatisfy { $0 == "delivered" }, "\(afterAnswers)")
                            try await remoteReceiver
                        }
                    }
                }
                // the outcomes parked before the outage survived the restart (append-only file)
                try await withClusterSocket(port: try r1.port) { lateClient in
                    _ = try await lateClient.hello(role: .client, clientId: "front-late")
                    for key in parkedKeys { lateClient.send(.subscribe(key: key)) }
                    try await receive(lateClient, into: ledger) { parked.allSatisfy { ledger.received[$0.id] != nil } }
                }
                let received = ledger.received
                for outcome in before + parked + duringLocal + after {
                    #expect(received[outcome.id] == outcome.key, "\(outcome.id) was acknowledged and must arrive")
                }
                #expect(
                    duringRemote.allSatisfy { received[$0.id] == nil }, "outcomes answered unavailable were not sent")
            }
        }

        /// Redis WITHOUT persistence restarts empty: every replica writes the routes of its live subscriptions
        /// back at once, so outcomes for them are delivered again (not parked for nobody).
        @Test(.timeLimit(.minutes(2)))
        func routesAreWrittenBackAfterAnEmptyRestart() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let keys = (100..<110).map { ProcessInstanceKey(Self.firstKey + Int64($0))! }
                let outcomes = try (0..<50).map { index in
                    try Outcome(id: "job-\(index)", key: keys[index % keys.count], variables: Array("{}".utf8))
                }
                let ledger = OutcomeLedger()
                try await withClusterSocket(port: try r1.port) { client in
                    try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await client.hello(role: .client, clientId: "front")
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        try await subscribe(client, to: keys)
                        cluster.redis.stop()
                        try await waitForReadiness(of: r1, status: 503)
                        try await cluster.redis.start()
                        try await r1.waitForLog("routes written back")
                        try await r1.waitForLog("registered replica", occurrences: 2)
                        try await waitForReadiness(of: r2, status: 200)
                        async let receiver: Void = receive(client, into: ledger) {
                            outcomes.allSatisfy { ledger.received[$0.id] != nil }
                        }
                        let answers = try await deliver(outcomes, through: worker, window: 10)
                        #expect(answers.values.allSatisfy { $0 == "delivered" }, "\(answers)")
                        try await receiver
                    }
                }
                #expect(r1.log.contains("affinity.routes=10"))
            }
        }

        /// Redis restarts empty and the replicas reconnect seconds apart (r1 is frozen with SIGSTOP meanwhile): the
        /// worker's replica r2 is back first and parks the outcomes for the client on r1, since their routes are
        /// gone. When r1 reconnects it writes its routes back and its client reads what was parked: every outcome
        /// answered `delivered` or `parked` arrives, before, during and after.
        @Test(.timeLimit(.minutes(3)))
        func replicasReconnectingAtDifferentMomentsLoseNothing() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let keys = (200..<210).map { ProcessInstanceKey(Self.firstKey + Int64($0))! }
                func outcomes(_ tag: String) throws -> [Outcome] {
                    try (0..<30).map { index in
                        try Outcome(
                            id: "\(tag)-\(index)", key: keys[index % keys.count],
                            variables: Array(#"{"phase":"\#(tag)"}"#.utf8))
                    }
                }
                let before = try outcomes("before")
                let gap = try outcomes("gap")
                let after = try outcomes("after")
                let ledger = OutcomeLedger()
                try await withClusterSocket(port: try r1.port) { client in
                    try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await client.hello(role: .client, clientId: "front")
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        try await subscribe(client, to: keys)
                        async let receiver: Void = receive(client, into: ledger) {
                            (before + gap + after).allSatisfy { ledger.received[$0.id] != nil }
                        }
                        let beforeAnswers = try await deliver(before, through: worker, window: 10)
                        #expect(beforeAnswers.values.allSatisfy { $0 == "delivered" }, "\(beforeAnswers)")

                        r1.signal(SIGSTOP)
                        cluster.redis.stop()
                        try await cluster.redis.start()
                        try await r2.waitForLog("registered replica", occurrences: 2)
                        try await waitForReadiness(of: r2, status: 200)
                        // r1 has not reconnected: its routes are gone, so the outcomes park
                        let gapAnswers = try await deliver(gap, through: worker, window: 10)
                        #expect(gapAnswers.values.allSatisfy { $0 == "parked" }, "\(gapAnswers)")
                        r1.signal(SIGCONT)
                        try await r1.waitForLog("routes written back")
                        try await waitForReadiness(of: r1, status: 200)
                        let afterAnswers = try await deliver(after, through: worker, window: 10)
                        #expect(
                            afterAnswers.values.allSatisfy { $0 == "delivered" || $0 == "parked" }, "\(afterAnswers)")
                        try await receiver
                    }
                }
                let received = ledger.received
                for outcome in before + gap + after {
                    #expect(received[outcome.id] == outcome.key, "\(outcome.id) was answered and must arrive")
                }
            }
        }
    }
}

/// Polls `/health/ready` of `replica` until it answers `status`.
func waitForReadiness(of replica: ReplicaProcess, status: Int, timeout: Duration = .seconds(30)) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await httpGet(port: try replica.port, path: "/health/ready").status) == status { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw FixtureError("replica \(replica.id) did not answer /health/ready with \(status) within \(timeout)")
}
