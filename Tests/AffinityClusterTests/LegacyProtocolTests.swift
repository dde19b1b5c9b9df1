import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Issue #17: the Node package's protocol on `/` across a cluster of three replica processes on Redis, with
    /// `--legacy-protocol`; the legacy clients and workers speak the frames of the package's README.
    @Suite("legacy protocol")
    struct LegacyProtocolTests {
        static let firstKey: Int64 = 2_251_799_813_698_000

        /// 8 legacy clients on three replicas all receive the 50 outcomes of a legacy worker on r1, in the order
        /// it sent them, with the variables byte for byte; an outcome from a protocol v1 worker on r2 reaches them
        /// too; a legacy worker's outcome reaches a v1 subscriber on r3, which acknowledges it.
        @Test(.timeLimit(.minutes(3)))
        func everyLegacyClientOnEveryReplicaReceivesEveryOutcome() async throws {
            try await withClusterEnvironment { cluster in
                let replicas = [
                    try await cluster.start(id: "r1", arguments: ["--legacy-protocol"]),
                    try await cluster.start(id: "r2", arguments: ["--legacy-protocol"]),
                    try await cluster.start(id: "r3", arguments: ["--legacy-protocol"]),
                ]
                #expect(replicas[0].log.contains("WITHOUT authentication"))
                let ports = try replicas.map { try $0.port }
                let placement = [0, 0, 0, 1, 1, 1, 2, 2]
                let v1Key = ProcessInstanceKey(Self.firstKey + 999)!
                try await withLegacyClients(ports: placement.map { ports[$0] }) { clients in
                    for client in clients { client.send(#"{"type":"REGISTER_CLIENT"}"#) }
                    // every client registered, and r1 knows that r2 and r3 hold legacy clients
                    for (index, replica) in replicas.enumerated() {
                        let count = Double(placement.filter { $0 == index }.count)
                        try await waitForMetric(of: replica, #"affinity_legacy_connections{role="client"}"#, atLeast: count)
                    }
                    // every replica knows that the two others hold legacy clients (the directory is read every second):
                    // r1's legacy worker and r2's v1 worker broadcast to them
                    for replica in replicas {
                        try await waitForMetric(of: replica, "affinity_legacy_peer_replicas", atLeast: 2)
                    }
                    try await withClusterSocket(port: ports[2]) { subscriber in
                        _ = try await subscriber.hello(role: .client, clientId: "v1-front")
                        try await subscribe(subscriber, to: [v1Key])
                        try await withLegacySocket(port: ports[0]) { worker in
                            worker.send(#"{"type":"REGISTER_WORKER"}"#)
                            for index in 0..<50 {
                                let key = Self.firstKey + Int64(index)
                                worker.send(
                                    #"{"type":"PROCESS_OUTCOME","processInstanceKey":"\#(key)","variables":{"n":\#(index),"s":"é \u00e9"}}"#
                                )
                            }
                            // a key as a number, for the v1 subscriber
                            worker.send(
                                #"{"type":"PROCESS_OUTCOME","processInstanceKey":\#(v1Key),"variables":{"to":"v1"}}"#)
                            // malformed frames are ignored, not answered
                            worker.send("not json")
                            worker.send(#"{"type":"PROCESS_OUTCOME","processInstanceKey":"x","variables":{}}"#)
                            guard case .outcome(let fromLegacy) = try await subscriber.next() else {
                                throw FixtureError("expected the legacy worker's outcome")
                            }
                            #expect(fromLegacy.key == v1Key)
                            #expect(fromLegacy.id.hasPrefix("legacy-"))
                            #expect(fromLegacy.variables == Array(#"{"to":"v1"}"#.utf8))
                            subscriber.send(.ack(id: fromLegacy.id))
                            #expect(await worker.receivedCount == 0, "the legacy protocol has no answers")
                        }
                    }
                    for (index, client) in clients.enumerated() {
                        let frames = try await client.frames(count: 51)
                        let numbers = frames.prefix(50).compactMap { ($0["variables"] as? [String: Any])?["n"] as? Int }
                        #expect(numbers == Array(0..<50), "client \(index) on r\(placement[index] + 1)")
                        #expect(frames.allSatisfy { $0["type"] as? String == "PROCESS_OUTCOME" })
                        #expect(frames.first?["processInstanceKey"] as? String == String(Self.firstKey))
                        #expect((frames.first?["variables"] as? [String: Any])?["s"] as? String == "é é")
                    }
                    // a protocol v1 worker's outcome reaches the legacy clients too
                    let v1Outcome = try Outcome(
                        id: "v1-job", key: ProcessInstanceKey(Self.firstKey + 500)!,
                        variables: Array(#"{"from":"v1"}"#.utf8))
                    try await withClusterSocket(port: ports[1]) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "v1-worker")
                        #expect(try await deliver([v1Outcome], through: worker, window: 1) == ["v1-job": "parked"])
                    }
                    for client in clients {
                        let frames = try await client.frames(count: 52)
                        #expect((frames[51]["variables"] as? [String: Any])?["from"] as? String == "v1")
                        #expect(frames[51]["processInstanceKey"] as? String == String(Self.firstKey + 500))
                    }
                }
                let metrics = try await httpGet(port: ports[0], path: "/metrics").body
                #expect(metricValue(metrics, #"affinity_legacy_outcomes_total{direction="received"}"#) == 51)
                #expect(metricValue(metrics, "affinity_legacy_invalid_frames_total") == 2)
            }
        }

        /// Without the flag, `/` is no WebSocket endpoint (404).
        @Test(.timeLimit(.minutes(2)))
        func legacyEndpointIsRefusedWithoutTheFlag() async throws {
            try await withClusterEnvironment { cluster in
                let replica = try await cluster.start(id: "r1")
                let answer = try await httpUpgrade(port: try replica.port, path: "/")
                #expect(answer.hasPrefix("HTTP/1.1 404"), "\(answer)")
                #expect(!replica.log.contains("WITHOUT authentication"))
            }
        }
    }
}

/// Runs `body` with one legacy socket per port.
func withLegacyClients<T: Sendable>(
    ports: [Int], _ body: @Sendable ([LegacySocket]) async throws -> T
) async throws -> T {
    try await openLegacySockets(ports[...], [], body)
}

/// Polls the replica's `/metrics` until the sample `name` is at least `value`.
func waitForMetric(of replica: ReplicaProcess, _ name: String, atLeast value: Double) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
        if let body = try? await httpGet(port: try replica.port, path: "/metrics").body,
            metricValue(body, name) >= value
        {
            return
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw FixtureError("\(name) of \(replica.id) did not reach \(value)")
}

private func openLegacySockets<T: Sendable>(
    _ remaining: ArraySlice<Int>, _ opened: [LegacySocket], _ body: @Sendable ([LegacySocket]) async throws -> T
) async throws -> T {
    guard let port = remaining.first else { return try await body(opened) }
    return try await withLegacySocket(port: port) { socket in
        try await openLegacySockets(remaining.dropFirst(), opened + [socket], body)
    }
}
