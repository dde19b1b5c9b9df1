import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@Suite("HTTP endpoints")
struct HTTPEndpointTests {
    func withHTTP<T: Sendable>(
        _ port: Int, _ body: @escaping @Sendable (TestClient) async throws -> T
    ) async throws -> T {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in try await body(client) }
    }

    func text(_ response: TestClient.Response) -> String {
        response.body.map { String(buffer: $0) } ?? ""
    }

    @Test func postOutcomeParksAndLongPollReturnsIt() async throws {
        try await withServer { server in
            try await withHTTP(server.port) { http in
                let posted = try await http.post(
                    "/v1/outcomes",
                    body: ByteBuffer(string: #"{"id":"h1","key":"123","variables":{"x":[1,{"y":null}]}}"#))
                #expect(posted.status == .ok)
                #expect(text(posted) == #"{"status":"parked"}"#)
                let polled = try await http.get("/v1/outcomes/123?timeout=1")
                #expect(polled.status == .ok)
                #expect(text(polled) == #"{"type":"outcome","id":"h1","key":"123","variables":{"x":[1,{"y":null}]}}"#)
                // acknowledged over HTTP: nothing left
                let acked = try await http.post("/v1/outcomes/123/ack", body: ByteBuffer(string: #"{"id":"h1"}"#))
                #expect(acked.status == .noContent)
                let empty = try await http.get("/v1/outcomes/123?timeout=0.2")
                #expect(empty.status == .noContent)
            }
        }
    }

    @Test func longPollReceivesALiveOutcome() async throws {
        try await withServer { server in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await withHTTP(server.port) { http in
                        let polled = try await http.get("/v1/outcomes/555?timeout=5")
                        #expect(polled.status == .ok)
                        #expect(text(polled).contains(#""id":"live""#))
                        let acked = try await http.post(
                            "/v1/outcomes/555/ack", body: ByteBuffer(string: #"{"type":"ack","id":"live"}"#))
                        #expect(acked.status == .noContent)
                    }
                }
                try await waitUntil { server.metric("affinity_subscriptions") == 1 }
                try await withHTTP(server.port) { http in
                    let posted = try await http.post(
                        "/v1/outcomes", body: ByteBuffer(string: #"{"id":"live","key":"555","variables":{}}"#))
                    #expect(text(posted) == #"{"status":"delivered"}"#)
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func postDeliversToAWebSocketSubscriber() async throws {
        try await withServer { server in
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: ProcessInstanceKey(8)!))
                _ = try await client.receive()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await withHTTP(server.port) { http in
                            let posted = try await http.post(
                                "/v1/outcomes", body: ByteBuffer(string: #"{"id":"p","key":"8","variables":{"a":1}}"#))
                            #expect(posted.status == .ok)
                            #expect(text(posted) == #"{"status":"delivered"}"#)
                        }
                    }
                    guard case .outcome(let outcome) = try await client.receive() else {
                        throw TestFailure("expected an outcome")
                    }
                    #expect(outcome.id == "p")
                    client.send(.ack(id: "p"))
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test func badPostsGetJSONErrors() async throws {
        try await withServer({ $0.maxMessageBytes = 1024 }) { server in
            try await withHTTP(server.port) { http in
                let cases: [(String, HTTPResponse.Status, String)] = [
                    ("nope", .badRequest, "bad_request"),
                    (#"{"id":"1","key":"01","variables":{}}"#, .badRequest, "bad_request"),
                    (#"{"id":"1","key":"1","variables":"x"}"#, .badRequest, "bad_request"),
                    (#"{"type":"ack","id":"1"}"#, .badRequest, "unknown_type"),
                    (
                        #"{"id":"1","key":"1","variables":{"b":"\#(String(repeating: "z", count: 2000))"}}"#,
                        .contentTooLarge, "too_large"
                    ),
                ]
                for (body, status, code) in cases {
                    let response = try await http.post("/v1/outcomes", body: ByteBuffer(string: body))
                    #expect(response.status == status, "\(body.prefix(60))")
                    #expect(response.headers[.contentType] == "application/json")
                    let message = try AffinityMessage.decode(Array(text(response).utf8))
                    guard case .error(let actual, _, _) = message else {
                        Issue.record("not an error body")
                        continue
                    }
                    #expect(actual.rawValue == code)
                }
                let badKey = try await http.get("/v1/outcomes/abc?timeout=1")
                #expect(badKey.status == .badRequest)
                let badTimeout = try await http.get("/v1/outcomes/5?timeout=soon")
                #expect(badTimeout.status == .badRequest)
                let notUpgrade = try await http.get("/v1/ws")
                #expect(notUpgrade.status == .upgradeRequired)
            }
        }
    }

    @Test func healthOnBothPortsAndMetricsOnlyOnTheMetricsPort() async throws {
        try await withServer({ $0.metricsPort = 0 }) { server in
            let metricsPort = try #require(server.metricsPort)
            for port in [server.port, metricsPort] {
                try await withHTTP(port) { http in
                    #expect(try await http.get("/health/live").status == .ok)
                    let ready = try await http.get("/health/ready")
                    #expect(ready.status == .ok)
                    #expect(text(ready) == #"{"status":"ready"}"#)
                }
            }
            try await withHTTP(metricsPort) { http in
                let metrics = try await http.get("/metrics")
                #expect(metrics.status == .ok)
                #expect(text(metrics).contains("affinity_connections"))
                let response = try await http.post("/v1/outcomes", body: ByteBuffer(string: "{}"))
                #expect(response.status == .notFound)
            }
            // the public port must not leak what the NetworkPolicy keeps internal
            try await withHTTP(server.port) { http in
                let metrics = try await http.get("/metrics")
                #expect(metrics.status == .notFound)
                #expect(!text(metrics).contains("affinity_"))
            }
        }
    }

    @Test func withoutAMetricsPortTheMetricsAreOnThePublicPort() async throws {
        try await withServer { server in
            #expect(server.metricsPort == nil)
            try await withHTTP(server.port) { http in
                let metrics = try await http.get("/metrics")
                #expect(metrics.status == .ok)
                #expect(text(metrics).contains("affinity_connections"))
            }
        }
    }

    @Test func longPollEndsWith503WhenTheReplicaDrains() async throws {
        try await withServer { server in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await withHTTP(server.port) { http in
                        let polled = try await http.get("/v1/outcomes/77?timeout=30")
                        #expect(polled.status == .serviceUnavailable)
                    }
                }
                // the poll is waiting (subscribed) before the drain starts; a fixed sleep raced a loaded machine
                try await waitUntil { server.metric("affinity_subscriptions") == 1 }
                let started = ContinuousClock.now
                await server.beginShutdown()
                try await group.waitForAll()
                #expect(ContinuousClock.now - started < .seconds(5))
            }
        }
    }
}
