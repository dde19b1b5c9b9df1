import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Guarantees of DESIGN.md section 4 where a long poll and a WebSocket subscriber, or a confirmed ack and the
/// ack timeout, meet on one outcome (one replica, embedded store, real sockets).
@Suite("Mixed deliveries (embedded store)")
struct MixedDeliveryTests {
    let key = ProcessInstanceKey(2_251_799_813_690_101)!

    func outcome(_ id: String, key: ProcessInstanceKey? = nil) throws -> Outcome {
        try Outcome(id: id, key: key ?? self.key, variables: Array(#"{"ok":true}"#.utf8))
    }

    func withHTTP<T: Sendable>(
        _ port: Int, _ body: @escaping @Sendable (TestClient) async throws -> T
    ) async throws -> T {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in try await body(client) }
    }

    /// A long poll and a WebSocket subscriber wait for one key. The poll parks a copy of the live outcome before
    /// it answers; the WebSocket subscriber's ack then decides the delivery (`delivered`) and removes that copy:
    /// no later poll or subscriber receives the outcome again.
    @Test(.timeLimit(.minutes(1)))
    func aWebSocketAckRemovesTheCopyALongPollParked() async throws {
        try await withServer({ $0.ackTimeout = .seconds(20) }) { server in
            try await withSocket(server) { client in
                try await client.hello(.client, clientID: "front-ws")
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let polled = RecordedText()
                    group.addTask {
                        try await withHTTP(server.port) { http in
                            let response = try await http.get("/v1/outcomes/\(key)?timeout=10")
                            polled.set("\(response.status.code) \(response.body.map { String(buffer: $0) } ?? "")")
                        }
                    }
                    // the poll waits (subscribed, next to the WebSocket client) before the outcome comes
                    try await waitUntil { server.metric("affinity_subscriptions") == 2 }
                    try await withSocket(server) { worker in
                        try await worker.hello(.worker)
                        worker.send(.outcome(try outcome("mixed")))
                        #expect(try await client.receive() == .outcome(try outcome("mixed")))
                        // the poll answers only after it parked its copy
                        try await waitUntil { polled.value != nil }
                        #expect(polled.value?.hasPrefix("200 ") == true)
                        #expect(polled.value?.contains(#""id":"mixed""#) == true)
                        client.send(.ack(id: "mixed"))
                        #expect(try await worker.receive() == .result(id: "mixed", status: .delivered))
                    }
                    try await group.waitForAll()
                }
            }
            // the copy the poll parked went with the WebSocket ack
            try await withHTTP(server.port) { http in
                let left = try await http.get("/v1/outcomes/\(key)?timeout=0.3")
                #expect(left.status == .noContent)
            }
            try await withSocket(server) { next in
                try await next.hello(.client, clientID: "front-next")
                next.send(.subscribe(key: key))
                #expect(try await next.receive() == .subscribed(key: key))
                await next.expectSilence()
            }
        }
    }

    /// A confirmed ack sent around the ack timeout (before it, while the delivery parks the outcome, or after
    /// the park): whenever `acknowledged` comes back, the outcome is gone from the store, so the next subscriber
    /// of the key cannot receive it. Acks are spread over ±40 ms around the timeout to meet each state.
    @Test(.timeLimit(.minutes(2)))
    func aConfirmedAckAroundTheAckTimeoutIsConfirmedOnlyOnceNothingIsLeft() async throws {
        let ackTimeout = 200
        try await withServer({ $0.ackTimeout = .milliseconds(ackTimeout) }) { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                try await withSocket(server) { client in
                    try await client.hello(.client, clientID: "front-confirm")
                    for round in 0..<17 {
                        let key = ProcessInstanceKey(self.key.value + 1 + Int64(round))!
                        let sent = try outcome("confirm-\(round)", key: key)
                        client.send(.subscribe(key: key))
                        #expect(try await client.receive() == .subscribed(key: key))
                        worker.send(.outcome(sent))
                        #expect(try await client.receive() == .outcome(sent))
                        try await Task.sleep(for: .milliseconds(ackTimeout - 40 + 5 * round))
                        client.send(.confirmedAck(id: sent.id))
                        let result = try await worker.receive()
                        #expect(try await client.receive() == .acknowledged(id: sent.id))
                        let answered: Set<AffinityMessage> = [
                            .result(id: sent.id, status: .delivered), .result(id: sent.id, status: .parked),
                        ]
                        #expect(answered.contains(result), "round \(round): \(result)")
                        try await withHTTP(server.port) { http in
                            let left = try await http.get("/v1/outcomes/\(key)?timeout=0")
                            #expect(left.status == .noContent, "round \(round): the outcome was still parked")
                        }
                        client.send(.unsubscribe(key: key))
                        #expect(try await client.receive() == .unsubscribed(key: key))
                    }
                }
            }
        }
    }
}
