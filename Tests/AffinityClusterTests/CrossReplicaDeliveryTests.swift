import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Three affinity-server processes on one Redis: clients on one replica, workers on another.
    @Suite("cross-replica delivery")
    struct CrossReplicaDeliveryTests {
        static let firstKey: Int64 = 2_251_799_813_685_000

        /// 3000 outcomes delivered by a worker on r2 to two clients on r1 and r3 (100 keys each side, 15 outcomes
        /// per key): every one is answered `delivered`, each client receives exactly the outcomes of its own keys,
        /// none is lost, none goes to the other client.
        @Test(.timeLimit(.minutes(5)))
        func thousandsOfOutcomesAreForwardedToTheOwningReplica() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let r3 = try await cluster.start(id: "r3")
                let keysA = (0..<100).map { ProcessInstanceKey(Self.firstKey + Int64($0))! }
                let keysB = (100..<200).map { ProcessInstanceKey(Self.firstKey + Int64($0))! }
                let perKey = 15
                var expectedA: [String: ProcessInstanceKey] = [:]
                var expectedB: [String: ProcessInstanceKey] = [:]
                var outcomes: [Outcome] = []
                for round in 0..<perKey {
                    for (index, key) in (keysA + keysB).enumerated() {
                        let id = "job-\(round)-\(index)"
                        outcomes.append(try Outcome(id: id, key: key, variables: Array(#"{"n":\#(round)}"#.utf8)))
                        if index < keysA.count { expectedA[id] = key } else { expectedB[id] = key }
                    }
                }
                #expect(outcomes.count == 3000)
                let allOutcomes = outcomes
                let ownedByA = expectedA
                let ownedByB = expectedB

                try await withClusterSocket(port: try r1.port) { clientA in
                    try await withClusterSocket(port: try r3.port) { clientB in
                        try await withClusterSocket(port: try r2.port) { worker in
                            #expect(try await clientA.hello(role: .client, clientId: "front-a") == "r1")
                            #expect(try await clientB.hello(role: .client, clientId: "front-b") == "r3")
                            #expect(try await worker.hello(role: .worker, clientId: "worker-1") == "r2")
                            try await subscribe(clientA, to: keysA)
                            try await subscribe(clientB, to: keysB)

                            async let receivedA = receiveAndAck(clientA, count: ownedByA.count)
                            async let receivedB = receiveAndAck(clientB, count: ownedByB.count)
                            let statuses = try await deliver(allOutcomes, through: worker, window: 400)

                            #expect(statuses.count == 3000)
                            #expect(statuses.values.allSatisfy { $0 == "delivered" })
                            let gotA = try await receivedA
                            let gotB = try await receivedB
                            #expect(gotA.count == ownedByA.count)
                            #expect(gotB.count == ownedByB.count)
                            #expect(gotA == ownedByA, "client A got exactly its own outcomes, each on its key")
                            #expect(gotB == ownedByB, "client B got exactly its own outcomes, each on its key")
                        }
                    }
                }
            }
        }

        /// An outcome for a key nobody subscribed yet is parked in Redis by r2; a client that subscribes on r3
        /// later receives it, and the parked copy is gone once acknowledged.
        @Test(.timeLimit(.minutes(2)))
        func outcomeBeforeSubscribeIsParkedAndDeliveredOnAnotherReplica() async throws {
            try await withClusterEnvironment { cluster in
                let r2 = try await cluster.start(id: "r2")
                let r3 = try await cluster.start(id: "r3")
                let key = ProcessInstanceKey(Self.firstKey + 777)!
                let outcome = try Outcome(id: "job-parked", key: key, variables: Array(#"{"total":42}"#.utf8))
                try await withClusterSocket(port: try r2.port) { worker in
                    _ = try await worker.hello(role: .worker, clientId: "worker-1")
                    let statuses = try await deliver([outcome], through: worker, window: 1)
                    #expect(statuses == ["job-parked": "parked"])
                }
                try await withClusterSocket(port: try r3.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front-late")
                    client.send(.subscribe(key: key))
                    #expect(try await client.next() == .subscribed(key: key))
                    guard case .outcome(let received) = try await client.next() else {
                        throw FixtureError("expected the parked outcome")
                    }
                    #expect(received == outcome)
                    client.send(.ack(id: received.id))
                }
                // Subscribing again after the ack finds nothing parked: a fresh outcome shows the order.
                try await withClusterSocket(port: try r3.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front-late")
                    try await waitUntilParkedCopyIsGone(client: client, key: key)
                }
            }
        }
    }
}

/// Subscribes to every key and waits for all `subscribed` answers.
func subscribe(_ socket: ClusterSocket, to keys: [ProcessInstanceKey]) async throws {
    for key in keys { socket.send(.subscribe(key: key)) }
    var pending = Set(keys)
    while !pending.isEmpty {
        switch try await socket.next() {
        case .subscribed(let key): pending.remove(key)
        case let other: throw FixtureError("expected subscribed, got \(other)")
        }
    }
}

/// Receives `count` distinct outcomes, acking each, and returns id -> key (duplicates are acked again and
/// counted once, as a client de-duplicates by id).
func receiveAndAck(_ socket: ClusterSocket, count: Int) async throws -> [String: ProcessInstanceKey] {
    var received: [String: ProcessInstanceKey] = [:]
    while received.count < count {
        switch try await socket.next(timeout: .seconds(60)) {
        case .outcome(let outcome):
            socket.send(.ack(id: outcome.id))
            if let earlier = received[outcome.id], earlier != outcome.key {
                throw FixtureError("outcome \(outcome.id) arrived for two keys")
            }
            received[outcome.id] = outcome.key
        case let other:
            throw FixtureError("expected an outcome, got \(other)")
        }
    }
    return received
}

/// Sends the outcomes with at most `window` unanswered, and returns id -> `delivered`/`parked`/error code.
/// `afterEachAnswer` sees the number of answers so far, `beforeEachSend` each outcome just before it is sent.
func deliver(
    _ outcomes: [Outcome], through worker: ClusterSocket, window: Int,
    afterEachAnswer: (Int) async throws -> Void = { _ in },
    beforeEachSend: (Outcome) -> Void = { _ in }
) async throws -> [String: String] {
    var answers: [String: String] = [:]
    var next = 0
    var inFlight = 0
    while answers.count < outcomes.count {
        while inFlight < window && next < outcomes.count {
            beforeEachSend(outcomes[next])
            worker.send(.outcome(outcomes[next]))
            next += 1
            inFlight += 1
        }
        switch try await worker.next(timeout: .seconds(60)) {
        case .result(let id, let status):
            answers[id] = status.rawValue
            inFlight -= 1
        case .error(let code, _, let ref?):
            answers[ref] = code.rawValue
            inFlight -= 1
        case let other:
            throw FixtureError("expected a result, got \(other)")
        }
        try await afterEachAnswer(answers.count)
    }
    return answers
}

/// Subscribes `key` and expects nothing parked: the acknowledged copy was removed from Redis. Proven with
/// a count: the next message after `subscribed` is the answer to an unsubscribe sent right after.
func waitUntilParkedCopyIsGone(client: ClusterSocket, key: ProcessInstanceKey) async throws {
    // the ack is processed asynchronously; retry the check a few times
    for attempt in 1...50 {
        client.send(.subscribe(key: key))
        client.send(.unsubscribe(key: key))
        #expect(try await client.next() == .subscribed(key: key))
        switch try await client.next() {
        case .unsubscribed(key):
            return
        case .outcome(let outcome):
            client.send(.ack(id: outcome.id))
            #expect(try await client.next() == .unsubscribed(key: key))
            if attempt == 50 { throw FixtureError("the parked copy of \(outcome.id) was never removed") }
            try await Task.sleep(for: .milliseconds(50))
        case let other:
            throw FixtureError("unexpected \(other)")
        }
    }
}
