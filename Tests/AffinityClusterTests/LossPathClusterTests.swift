import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// The loss paths of issue #11 that need Redis and separate replica processes; each test failed before the
    /// fix.
    @Suite("loss paths")
    struct LossPathClusterTests {
        static let firstKey: Int64 = 2_251_799_813_697_000

        func key(_ offset: Int64) -> ProcessInstanceKey { ProcessInstanceKey(Self.firstKey + offset)! }

        /// 2. The route of a live subscription is lost (it expired, Redis lost it); a worker on another replica
        /// parks the outcome. The subscriber's replica writes the route back at its next refresh and takes what
        /// was parked meanwhile: the client receives it within one refresh interval (1 s here).
        @Test(.timeLimit(.minutes(2)))
        func parkedOutcomeReachesAClientWhoseRouteWasLost() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1", arguments: ["--route-ttl", "3s"])
                let r2 = try await cluster.start(id: "r2", arguments: ["--route-ttl", "3s"])
                let key = key(1)
                let sent = try Outcome(id: "lost-route", key: key, variables: Array(#"{"n":1}"#.utf8))
                try await withClusterSocket(port: try r1.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    try await subscribe(client, to: [key])
                    #expect(try await cluster.redis.command("DEL", "affinity:{\(key)}:route") == "1")
                    let answers = try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        return try await deliver([sent], through: worker, window: 1)
                    }
                    #expect(answers == ["lost-route": "parked"])
                    #expect(try await client.next(timeout: .seconds(10)) == .outcome(sent))
                    client.send(.ack(id: sent.id))
                    try await waitUntilParkedCopyIsGone(client: client, key: key)
                }
            }
        }

        /// 2. Two clients subscribe one key on two replicas; the second (which holds the route) unsubscribes and
        /// deletes it. An outcome parked meanwhile still reaches the first, and its route is back.
        @Test(.timeLimit(.minutes(2)))
        func unsubscribingOneOfTwoSubscribersLeavesARouteToTheOther() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1", arguments: ["--route-ttl", "3s"])
                let r2 = try await cluster.start(id: "r2", arguments: ["--route-ttl", "3s"])
                let key = key(2)
                let sent = try Outcome(id: "second-left", key: key, variables: Array(#"{"n":2}"#.utf8))
                try await withClusterSocket(port: try r1.port) { stays in
                    _ = try await stays.hello(role: .client, clientId: "front-stays")
                    try await subscribe(stays, to: [key])
                    try await withClusterSocket(port: try r2.port) { leaves in
                        _ = try await leaves.hello(role: .client, clientId: "front-leaves")
                        try await subscribe(leaves, to: [key])
                        leaves.send(.unsubscribe(key: key))
                        #expect(try await leaves.next() == .unsubscribed(key: key))
                    }
                    let answers = try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker")
                        return try await deliver([sent], through: worker, window: 1)
                    }
                    #expect(answers["second-left"] == "parked" || answers["second-left"] == "delivered")
                    #expect(try await stays.next(timeout: .seconds(10)) == .outcome(sent))
                    stays.send(.ack(id: sent.id))
                    #expect(try await cluster.redis.command("HGET", "affinity:{\(key)}:route", "replica") == "r1")
                }
            }
        }

        /// 3. 30 outcomes of 900 kB parked in Redis (27 MB, over the default 8 MiB outbound budget): a subscriber
        /// with default settings receives all of them, in order, instead of being closed on every attempt.
        @Test(.timeLimit(.minutes(3)))
        func backlogLargerThanTheOutboundBudgetIsHandedOverFromRedis() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let key = key(3)
                let padding = String(repeating: "y", count: 900_000)
                let outcomes = try (0..<30).map { index in
                    try Outcome(id: "big-\(index)", key: key, variables: Array(#"{"pad":"\#(padding)"}"#.utf8))
                }
                try await withClusterSocket(port: try r1.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker")
                    let answers = try await deliver(outcomes, through: worker, window: 4)
                    #expect(answers.values.allSatisfy { $0 == "parked" }, "\(answers)")
                }
                try await withClusterSocket(port: try r1.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    try await subscribe(client, to: [key])
                    for expected in outcomes {
                        let message = try await client.next(timeout: .seconds(30))
                        guard case .outcome(let received) = message else {
                            throw FixtureError("expected \(expected.id), got \(message)")
                        }
                        #expect(received.id == expected.id)
                        client.send(.ack(id: received.id))
                    }
                    try await waitUntilParkedCopyIsGone(client: client, key: key)
                }
                let metrics = try await httpGet(port: try r1.port, path: "/metrics").body
                #expect(metricValue(metrics, "affinity_slow_consumer_closes_total") == 0)
            }
        }

        /// 4. A subscribe while Redis is down is answered `subscribed`; a local worker's outcome is delivered; when
        /// Redis returns (empty), the route is written back and a worker on another replica reaches the client.
        @Test(.timeLimit(.minutes(2)))
        func subscribeDuringARedisOutageIsKeptAndRoutedWhenItReturns() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let key = key(4)
                let local = try Outcome(id: "during", key: key, variables: Array(#"{"when":"during"}"#.utf8))
                let remote = try Outcome(id: "after", key: key, variables: Array(#"{"when":"after"}"#.utf8))
                try await withClusterSocket(port: try r1.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    cluster.redis.stop()
                    try await waitForReadiness(of: r1, status: 503)
                    client.send(.subscribe(key: key))
                    #expect(try await client.next() == .subscribed(key: key))
                    try await withClusterSocket(port: try r1.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker-local")
                        async let answers = deliver([local], through: worker, window: 1)
                        #expect(try await client.next() == .outcome(local))
                        client.send(.ack(id: local.id))
                        #expect(try await answers == ["during": "delivered"])
                    }
                    try await cluster.redis.start()
                    try await waitForReadiness(of: r1, status: 200)
                    try await waitForReadiness(of: r2, status: 200)
                    try await r1.waitForLog("routes written back")
                    try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker-remote")
                        async let answers = deliver([remote], through: worker, window: 1)
                        #expect(try await client.next() == .outcome(remote))
                        client.send(.ack(id: remote.id))
                        #expect(try await answers == ["after": "delivered"])
                    }
                }
            }
        }

        /// 5. A replica killed with -9 and started again under its id (a container restart) does not exit: it
        /// stays live but not ready until its old registration is gone, then registers and turns ready.
        @Test(.timeLimit(.minutes(2)))
        func replicaRestartedUnderItsOwnIDRejoins() async throws {
            try await withClusterEnvironment { cluster in
                let old = try await cluster.start(id: "r1")
                await old.kill9()
                // a new peer port: the old registration's address does not answer, so only its lease can end it
                let restarted = try await cluster.launch(id: "r1")
                try await restarted.waitForPort()
                try await restarted.waitForLog("waiting for the previous instance")
                #expect(try await httpGet(port: try restarted.port, path: "/health/ready").status == 503)
                #expect(try await httpGet(port: try restarted.port, path: "/health/live").status == 200)
                try await restarted.waitForLog("registered replica", timeout: .seconds(40))
                try await waitForReadiness(of: restarted, status: 200)
                #expect(restarted.isRunning)
            }
        }

        /// 5. Restarted on the same peer address (a container restart in the same pod): the address answers as the
        /// new instance, which proves the old one dead, so it registers without waiting for the lease.
        @Test(.timeLimit(.minutes(2)))
        func replicaRestartedOnItsOwnAddressRejoinsAtOnce() async throws {
            try await withClusterEnvironment { cluster in
                let old = try await cluster.start(id: "r1")
                await old.kill9()
                let started = ContinuousClock.now
                let restarted = try await cluster.launch(id: "r1", peerPort: old.peerPort)
                try await restarted.waitForPort()
                try await restarted.waitForLog("registered replica", timeout: .seconds(40))
                #expect(ContinuousClock.now - started < .seconds(10), "registered before the 15 s lease ran out")
                try await waitForReadiness(of: restarted, status: 200)
            }
        }

        /// 6. The same outcome id with the same payload is idempotent; with another payload it is a `conflict`, and
        /// the first payload is kept.
        @Test(.timeLimit(.minutes(2)))
        func reusedOutcomeIDIsIdempotentOrAConflict() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let key = key(6)
                let first = try Outcome(id: "reused", key: key, variables: Array(#"{"v":1}"#.utf8))
                let other = try Outcome(id: "reused", key: key, variables: Array(#"{"v":2}"#.utf8))
                try await withClusterSocket(port: try r1.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker")
                    #expect(try await deliver([first], through: worker, window: 1) == ["reused": "parked"])
                    #expect(try await deliver([first], through: worker, window: 1) == ["reused": "parked"])
                    #expect(try await deliver([other], through: worker, window: 1) == ["reused": "conflict"])
                }
                try await withClusterSocket(port: try r1.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front")
                    client.send(.subscribe(key: key))
                    client.send(.unsubscribe(key: key))
                    #expect(try await client.next() == .subscribed(key: key))
                    #expect(try await client.next() == .outcome(first))
                    #expect(try await client.next() == .unsubscribed(key: key))
                }
            }
        }

        /// 7. Front-end A on r1 receives turn 1 forwarded from r2, then sends unsubscribe before its ack. Front-end
        /// B subscribes the key on r2 for turn 2: it must not receive turn 1.
        @Test(.timeLimit(.minutes(2)))
        func lateAckIsNotLostAcrossReplicas() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let key = key(7)
                let turn1 = try Outcome(id: "turn-1", key: key, variables: Array(#"{"turn":1}"#.utf8))
                let turn2 = try Outcome(id: "turn-2", key: key, variables: Array(#"{"turn":2}"#.utf8))
                try await withClusterSocket(port: try r2.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker")
                    try await withClusterSocket(port: try r1.port) { first in
                        _ = try await first.hello(role: .client, clientId: "front-a")
                        try await subscribe(first, to: [key])
                        async let answers = deliver([turn1], through: worker, window: 1)
                        #expect(try await first.next() == .outcome(turn1))
                        first.send(.unsubscribe(key: key))
                        first.send(.ack(id: turn1.id))
                        #expect(try await first.next() == .unsubscribed(key: key))
                        _ = try await answers
                    }
                    try await expectNextTurnGetsOnly(turn2, port: try r2.port, worker: worker)
                }
            }
        }

        /// 7. An ack that comes after the key's last subscriber on its replica left (so after the unsubscribe that
        /// gave Redis the ids acknowledged before, and after the outcome was parked because its subscriber left)
        /// removes the parked copy and reaches Redis: a worker's retry of that outcome on another replica is
        /// answered `delivered` and never parked for the key's next subscriber.
        @Test(.timeLimit(.minutes(2)))
        func ackAfterTheLastUnsubscribeReachesRedis() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let key = key(8)
                let turn1 = try Outcome(id: "turn-1", key: key, variables: Array(#"{"turn":1}"#.utf8))
                let turn2 = try Outcome(id: "turn-2", key: key, variables: Array(#"{"turn":2}"#.utf8))
                try await withClusterSocket(port: try r2.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker")
                    try await withClusterSocket(port: try r1.port) { first in
                        _ = try await first.hello(role: .client, clientId: "front-a")
                        try await subscribe(first, to: [key])
                        async let answers = deliver([turn1], through: worker, window: 1)
                        #expect(try await first.next() == .outcome(turn1))
                        first.send(.unsubscribe(key: key))
                        #expect(try await first.next() == .unsubscribed(key: key))
                        // parked when its only subscriber left (waited for here: an ack racing the unsubscribe
                        // inside the replica could otherwise still decide the delivery, `delivered`)
                        #expect(try await answers == ["turn-1": "parked"])
                        // the ack after that, confirmed: answered once it took effect everywhere, the parked
                        // copy removed
                        first.send(.confirmedAck(id: turn1.id))
                        #expect(try await first.next() == .acknowledged(id: turn1.id))
                    }
                    // the worker sends turn 1 again (its result was lost, the job was handed out twice)
                    #expect(try await deliver([turn1], through: worker, window: 1) == ["turn-1": "delivered"])
                    try await expectNextTurnGetsOnly(turn2, port: try r2.port, worker: worker)
                }
            }
        }

        /// 7. The owner's `delivered` answer to a forwarded outcome is lost with the peer connection: r1's client
        /// acknowledged turn 1, r1 answered `delivered`, and the connection broke before the answer reached r2
        /// (a relay between them drops it, then cuts the connection). r2 cannot know and parks turn 1, since the
        /// route still names r1. r1, whose stream broke with that answer on it, tells Redis that turn 1 was
        /// acknowledged, so the parked copy is removed (or never made) and front-end B, subscribing the key on r2
        /// while front-end A is still subscribed on r1, never receives turn 1.
        @Test(.timeLimit(.minutes(2)))
        func deliveredAnswerLostWithThePeerConnectionHandsNothingOutAgain() async throws {
            try await withClusterEnvironment { cluster in
                let key = key(9)
                let turn1 = try Outcome(id: "turn-1", key: key, variables: Array(#"{"turn":1}"#.utf8))
                let turn2 = try Outcome(id: "turn-2", key: key, variables: Array(#"{"turn":2}"#.utf8))
                try await withOwnerBehindRelay(cluster, key: key) { relay, r1, r2, worker, first in
                    relay.dropReplies()
                    async let answers = deliver([turn1], through: worker, window: 1)
                    #expect(try await first.next() == .outcome(turn1))
                    first.send(.ack(id: turn1.id))
                    // r1 answered `delivered` into the relay, which dropped the answer
                    try await waitForMetric(
                        of: r1, #"affinity_peer_deliveries_received_total{status="delivered"}"#, atLeast: 2)
                    await relay.cutAll()
                    let answer = (try await answers)[turn1.id]
                    #expect(answer == "parked" || answer == "delivered", "\(String(describing: answer))")
                    try await expectRedisRemembersAcknowledged(turn1, in: cluster)
                    // front-end A is still subscribed on r1; B takes the key over on r2
                    try await expectNextTurnGetsOnly(turn2, port: try r2.port, worker: worker)
                }
            }
        }

        /// 7. The owner's `delivered` answer to a forwarded outcome arrives after the forwarding replica's deadline
        /// (its ack timeout + 5 s: 6 s here): the connection stalled for 7 s without breaking (a relay holds back
        /// what r1 sends). r2 gave up and parked turn 1, since the route still names r1; when the late answer
        /// comes, r2 tells Redis that turn 1 was acknowledged, so front-end B, subscribing the key on r2 while
        /// front-end A is still subscribed on r1, never receives turn 1.
        @Test(.timeLimit(.minutes(2)))
        func deliveredAnswerAfterTheForwardersDeadlineHandsNothingOutAgain() async throws {
            try await withClusterEnvironment { cluster in
                let key = key(10)
                let turn1 = try Outcome(id: "turn-1", key: key, variables: Array(#"{"turn":1}"#.utf8))
                let turn2 = try Outcome(id: "turn-2", key: key, variables: Array(#"{"turn":2}"#.utf8))
                try await withOwnerBehindRelay(cluster, key: key, arguments: ["--ack-timeout", "1s"]) {
                    relay, _, r2, worker, first in
                    relay.delayReplies(by: .seconds(7))
                    let sent = ContinuousClock.now
                    async let answers = deliver([turn1], through: worker, window: 1)
                    #expect(try await first.next() == .outcome(turn1))
                    first.send(.ack(id: turn1.id))
                    // r2's deadline passed before r1's answer came: parked
                    #expect(try await answers == [turn1.id: "parked"])
                    #expect(ContinuousClock.now - sent < .seconds(7), "the answer was not late")
                    // the stall ends (what was held back still comes 7 s late, in order) before HTTP/2 keepalive
                    // could notice it (a ping 10 s after the last frame read, 5 s to answer): the connection does
                    // not break
                    relay.passReplies()
                    // the late answer reaches r2
                    try await expectRedisRemembersAcknowledged(turn1, in: cluster)
                    // front-end A is still subscribed on r1; B takes the key over on r2
                    try await expectNextTurnGetsOnly(turn2, port: try r2.port, worker: worker)
                }
            }
        }

        /// Starts r1, whose peers reach it through a ``TCPRelay``, and r2 (both with `arguments`); a worker on r2
        /// and front-end A on r1, subscribed to `key`; then a first outcome forwarded through the relay (the peer
        /// connection and its stream are up) before `body`.
        func withOwnerBehindRelay(
            _ cluster: ClusterEnvironment, key: ProcessInstanceKey, arguments: [String] = [],
            _ body:
                @Sendable (TCPRelay, ReplicaProcess, ReplicaProcess, ClusterSocket, ClusterSocket) async throws ->
                Void
        ) async throws {
            let r1PeerPort = try await freeLoopbackPort()
            let relay = try await TCPRelay(targetPort: r1PeerPort)
            do {
                let r1 = try await cluster.start(
                    id: "r1", peerPort: r1PeerPort,
                    arguments: ["--peer-advertise-address", "127.0.0.1:\(relay.port)"] + arguments)
                let r2 = try await cluster.start(id: "r2", arguments: arguments)
                try await withClusterSocket(port: try r2.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker")
                    try await withClusterSocket(port: try r1.port) { first in
                        _ = try await first.hello(role: .client, clientId: "front-a")
                        try await subscribe(first, to: [key])
                        let warmUp = try Outcome(id: "warm-up", key: key, variables: Array(#"{"turn":0}"#.utf8))
                        async let warmUpAnswers = deliver([warmUp], through: worker, window: 1)
                        #expect(try await first.next() == .outcome(warmUp))
                        first.send(.ack(id: warmUp.id))
                        #expect(try await warmUpAnswers == [warmUp.id: "delivered"])
                        try await body(relay, r1, r2, worker, first)
                    }
                }
            } catch {
                await relay.shutdown()
                throw error
            }
            await relay.shutdown()
        }

        /// Redis remembers `outcome`'s id as acknowledged for its key, within 10 s.
        func expectRedisRemembersAcknowledged(_ outcome: Outcome, in cluster: ClusterEnvironment) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            var remembered = false
            while !remembered && ContinuousClock.now < deadline {
                remembered =
                    try await cluster.redis.command(
                        "SISMEMBER", "affinity:{\(outcome.key)}:acknowledged", outcome.id) == "1"
                if !remembered { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(remembered, "Redis never learnt that \(outcome.id) was acknowledged")
        }

        /// The key's next subscriber (another front-end, on the replica at `port`) receives `turn` from `worker`,
        /// and nothing before it (a stale outcome of the previous turn would come first).
        func expectNextTurnGetsOnly(_ turn: Outcome, port: Int, worker: ClusterSocket) async throws {
            try await withClusterSocket(port: port) { next in
                _ = try await next.hello(role: .client, clientId: "front-b")
                try await subscribe(next, to: [turn.key])
                async let answers = deliver([turn], through: worker, window: 1)
                let message = try await next.next()
                #expect(message == .outcome(turn), "the next turn got \(message)")
                if case .outcome(let received) = message { next.send(.ack(id: received.id)) }
                if message != .outcome(turn) {
                    #expect(try await next.next() == .outcome(turn))
                    next.send(.ack(id: turn.id))
                }
                #expect(try await answers == [turn.id: "delivered"])
            }
        }
    }
}
