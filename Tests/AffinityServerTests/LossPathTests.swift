import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// The loss paths of issue #11 on one replica with the embedded store: each test failed before the
/// fix. (The ones that need Redis or several processes are in AffinityClusterTests.)
@Suite("Loss paths (embedded store)")
struct LossPathTests {
    let key = ProcessInstanceKey(2_251_799_813_690_001)!

    func outcome(_ id: String, variables: String = #"{"ok":true}"#) throws -> Outcome {
        try Outcome(id: id, key: key, variables: Array(variables.utf8))
    }

    func withHTTP<T: Sendable>(
        _ port: Int, _ body: @escaping @Sendable (TestClient) async throws -> T
    ) async throws -> T {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in try await body(client) }
    }

    func text(_ response: TestClient.Response) -> String {
        response.body.map { String(buffer: $0) } ?? ""
    }

    func post(_ http: TestClient, id: String, variables: String = "{}") async throws -> TestClient.Response {
        try await http.post(
            "/v1/outcomes", body: ByteBuffer(string: #"{"id":"\#(id)","key":"\#(key)","variables":\#(variables)}"#))
    }

    func acknowledge(_ http: TestClient, id: String) async throws -> TestClient.Response {
        try await http.post("/v1/outcomes/\(key)/ack", body: ByteBuffer(string: #"{"id":"\#(id)"}"#))
    }

    // MARK: - 1. Long poll

    /// A poll whose HTTP client left takes nothing: the next outcome is parked, not answered `delivered`,
    /// and a later poll gets it.
    @Test func longPollWhoseClientLeftTakesNothing() async throws {
        try await withServer({ $0.ackTimeout = .seconds(2) }) { server in
            try await RawWebSocket.with(port: server.port, upgrade: false) { raw in
                try await raw.write(
                    Array("GET /v1/outcomes/\(key)?timeout=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
                try await Task.sleep(for: .seconds(1))
            }
            try await Task.sleep(for: .milliseconds(200))
            try await withHTTP(server.port) { http in
                let posted = try await post(http, id: "left", variables: #"{"n":1}"#)
                #expect(text(posted) == #"{"status":"parked"}"#)
                let polled = try await http.get("/v1/outcomes/\(key)?timeout=1")
                #expect(polled.status == .ok)
                #expect(text(polled) == #"{"type":"outcome","id":"left","key":"\#(key)","variables":{"n":1}}"#)
            }
        }
    }

    /// An outcome handed to a poll stays parked until the HTTP client acknowledges it.
    @Test func polledOutcomeStaysParkedUntilAcknowledged() async throws {
        try await withServer { server in
            try await withHTTP(server.port) { http in
                #expect(text(try await post(http, id: "p1")) == #"{"status":"parked"}"#)
                let first = try await http.get("/v1/outcomes/\(key)?timeout=1")
                #expect(first.status == .ok)
                #expect(text(first).contains(#""id":"p1""#))
                // not acknowledged: the next poll gets it again
                let again = try await http.get("/v1/outcomes/\(key)?timeout=1")
                #expect(again.status == .ok)
                #expect(text(again).contains(#""id":"p1""#))
                let acked = try await acknowledge(http, id: "p1")
                #expect(acked.status == .noContent)
                let empty = try await http.get("/v1/outcomes/\(key)?timeout=0.3")
                #expect(empty.status == .noContent)
            }
        }
    }

    /// A live outcome taken by a poll: the worker is answered `delivered` only after the HTTP ack.
    @Test func liveOutcomeTakenByAPollIsDeliveredAfterTheHTTPAck() async throws {
        try await withServer({ $0.ackTimeout = .seconds(20) }) { server in
            let answered = RecordedText()
            try await withThrowingTaskGroup(of: Void.self) { group in
                let polled = RecordedText()
                group.addTask {
                    try await withHTTP(server.port) { http in
                        let response = try await http.get("/v1/outcomes/\(key)?timeout=10")
                        polled.set("\(response.status.code) \(text(response))")
                    }
                }
                // the poll waits (subscribed) before the outcome comes; a fixed sleep raced a loaded machine
                try await waitUntil { server.metric("affinity_subscriptions") == 1 }
                group.addTask {
                    try await withHTTP(server.port) { http in
                        let response = try await post(http, id: "live")
                        answered.set(text(response))
                    }
                }
                try await waitUntil { polled.value != nil }
                #expect(polled.value?.hasPrefix("200 ") == true)
                #expect(polled.value?.contains(#""id":"live""#) == true)
                try await Task.sleep(for: .milliseconds(500))
                #expect(answered.value == nil, "answered before the client acknowledged")
                try await withHTTP(server.port) { http in
                    let acked = try await acknowledge(http, id: "live")
                    #expect(acked.status == .noContent)
                }
                try await group.waitForAll()
            }
            #expect(answered.value == #"{"status":"delivered"}"#)
            // acknowledged: nothing is left for the next poll
            try await withHTTP(server.port) { http in
                let empty = try await http.get("/v1/outcomes/\(key)?timeout=0.3")
                #expect(empty.status == .noContent)
            }
        }
    }

    /// A live outcome taken by a poll and never acknowledged: the worker is answered `parked` after the ack
    /// timeout, and the next poll gets it.
    @Test func liveOutcomeTakenByAPollWithoutAckIsParked() async throws {
        try await withServer({ $0.ackTimeout = .seconds(1) }) { server in
            try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    try await withHTTP(server.port) { http in
                        text(try await http.get("/v1/outcomes/\(key)?timeout=10"))
                    }
                }
                try await waitUntil { server.metric("affinity_subscriptions") == 1 }
                let answer = try await withHTTP(server.port) { http in text(try await post(http, id: "unacked")) }
                #expect(answer == #"{"status":"parked"}"#)
                #expect(try await group.next()?.contains(#""id":"unacked""#) == true)
            }
            try await withHTTP(server.port) { http in
                let again = try await http.get("/v1/outcomes/\(key)?timeout=1")
                #expect(again.status == .ok)
                #expect(text(again).contains(#""id":"unacked""#))
            }
        }
    }

    @Test func httpAckValidatesItsInput() async throws {
        try await withServer { server in
            try await withHTTP(server.port) { http in
                let badKey = try await http.post("/v1/outcomes/abc/ack", body: ByteBuffer(string: #"{"id":"x"}"#))
                #expect(badKey.status == .badRequest)
                #expect(text(badKey).contains(#""code":"bad_request""#))
                let noID = try await http.post("/v1/outcomes/\(key)/ack", body: ByteBuffer(string: #"{}"#))
                #expect(noID.status == .badRequest)
                let notJSON = try await http.post("/v1/outcomes/\(key)/ack", body: ByteBuffer(string: "ack"))
                #expect(notJSON.status == .badRequest)
                // an id that is not parked (acknowledged before, or expired): nothing to do
                #expect(try await acknowledge(http, id: "never-parked").status == .noContent)
            }
        }
    }

    // MARK: - 3. Backlog larger than the outbound budget

    /// 10 outcomes of 600 kB parked over a 2 MiB outbound budget: the subscriber receives all of them, in
    /// order, in pages, instead of being closed as a slow consumer on every attempt.
    @Test(.timeLimit(.minutes(2)))
    func backlogLargerThanTheOutboundBudgetIsHandedOverInPages() async throws {
        let padding = String(repeating: "x", count: 600_000)
        try await withServer({
            $0.maxOutboundBytes = 2 << 20
            $0.maxMessageBytes = 1 << 20
        }) { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                for index in 0..<10 {
                    worker.send(.outcome(try outcome("big-\(index)", variables: #"{"pad":"\#(padding)"}"#)))
                    #expect(try await worker.receive() == .result(id: "big-\(index)", status: .parked))
                }
            }
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                for index in 0..<10 {
                    let message = try await client.receive(timeout: .seconds(15))
                    guard case .outcome(let received) = message else {
                        Issue.record("expected outcome big-\(index), got \(message)")
                        return
                    }
                    #expect(received.id == "big-\(index)")
                    client.send(.ack(id: received.id))
                }
                await client.expectSilence()
            }
            #expect(server.metric("affinity_slow_consumer_closes_total") ?? 0 == 0)
        }
    }

    // MARK: - 6. Outcome ids reused

    @Test func reusedIDWithTheSamePayloadIsIdempotentAndWithAnotherPayloadConflicts() async throws {
        try await withServer { server in
            try await withHTTP(server.port) { http in
                #expect(text(try await post(http, id: "same", variables: #"{"a":1}"#)) == #"{"status":"parked"}"#)
                #expect(text(try await post(http, id: "same", variables: #"{"a":1}"#)) == #"{"status":"parked"}"#)
                let conflict = try await post(http, id: "same", variables: #"{"a":2}"#)
                #expect(conflict.status == .conflict)
                #expect(text(conflict).contains(#""code":"conflict""#))
            }
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                worker.send(.outcome(try outcome("same", variables: #"{"a":3}"#)))
                try await worker.expectError(.conflict, ref: "same")
            }
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                #expect(try await client.receive() == .outcome(try outcome("same", variables: #"{"a":1}"#)))
                await client.expectSilence()
            }
        }
    }

    // MARK: - 7. Late acks

    /// An ack that arrives after the unsubscribe of its key still counts: the outcome is not handed to the
    /// next subscriber of the key (another front-end, the chat's next turn).
    @Test func ackAfterUnsubscribeStillCounts() async throws {
        try await withServer({ $0.ackTimeout = .seconds(30) }) { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                try await withSocket(server) { first in
                    try await first.hello(.client, clientID: "front-a")
                    first.send(.subscribe(key: key))
                    #expect(try await first.receive() == .subscribed(key: key))
                    worker.send(.outcome(try outcome("turn-1")))
                    #expect(try await first.receive() == .outcome(try outcome("turn-1")))
                    first.send(.unsubscribe(key: key))
                    first.send(.ack(id: "turn-1"))
                    #expect(try await first.receive() == .unsubscribed(key: key))
                    // parked when the unsubscribe released it, delivered when the ack came in before the park
                    let answer = try await worker.receive()
                    #expect(
                        answer == .result(id: "turn-1", status: .parked)
                            || answer == .result(id: "turn-1", status: .delivered), "\(answer)")
                    await first.expectSilence()
                }
                try await withSocket(server) { next in
                    try await next.hello(.client, clientID: "front-b")
                    next.send(.subscribe(key: key))
                    #expect(try await next.receive() == .subscribed(key: key))
                    await next.expectSilence(for: .milliseconds(500))
                    worker.send(.outcome(try outcome("turn-2")))
                    #expect(try await next.receive() == .outcome(try outcome("turn-2")))
                    next.send(.ack(id: "turn-2"))
                    #expect(try await worker.receive() == .result(id: "turn-2", status: .delivered))
                }
            }
        }
    }

    /// A confirmed ack is answered `acknowledged` once it took effect: the parked copy is gone by then, so a
    /// client that waits for it before answering its caller cannot have the outcome reach the next subscriber.
    @Test func confirmedAckIsAnsweredOnceTheParkedCopyIsGone() async throws {
        try await withServer { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                worker.send(.outcome(try outcome("parked-first")))
                #expect(try await worker.receive() == .result(id: "parked-first", status: .parked))
            }
            try await withSocket(server) { client in
                try await client.hello(.client, clientID: "front-a")
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                #expect(try await client.receive() == .outcome(try outcome("parked-first")))
                client.send(.confirmedAck(id: "parked-first"))
                #expect(try await client.receive() == .acknowledged(id: "parked-first"))
                // an id never sent on this connection is confirmed too (nothing to do)
                client.send(.confirmedAck(id: "unknown"))
                #expect(try await client.receive() == .acknowledged(id: "unknown"))
            }
            try await withSocket(server) { next in
                try await next.hello(.client, clientID: "front-b")
                next.send(.subscribe(key: key))
                #expect(try await next.receive() == .subscribed(key: key))
                await next.expectSilence()
            }
        }
    }

    /// A client that never acks holds at most `maxUnacknowledgedPerConnection` outcomes; the next ones park
    /// (the replica's memory does not grow with them) and reach it once it acks and subscribes again.
    @Test func aClientThatNeverAcksHoldsABoundedNumberOfOutcomes() async throws {
        // one key per outcome: a worker connection delivers the outcomes of one key one after the other
        let keys = (0..<4).map { ProcessInstanceKey(2_251_799_813_690_100 + Int64($0))! }
        @Sendable func keyed(_ id: String, _ index: Int) throws -> Outcome {
            try Outcome(id: id, key: keys[index], variables: Array("{}".utf8))
        }
        try await withServer({
            $0.maxUnacknowledgedPerConnection = 3
            $0.ackTimeout = .seconds(30)
        }) { server in
            try await withSocket(server) { client in
                try await client.hello(.client)
                for key in keys {
                    client.send(.subscribe(key: key))
                    #expect(try await client.receive() == .subscribed(key: key))
                }
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    for index in 0..<3 { worker.send(.outcome(try keyed("held-\(index)", index))) }
                    for _ in 0..<3 {
                        guard case .outcome = try await client.receive() else {
                            Issue.record("expected an outcome")
                            return
                        }
                    }
                    worker.send(.outcome(try keyed("over", 3)))
                    #expect(try await worker.receive() == .result(id: "over", status: .parked))
                    await client.expectSilence()
                    for index in 0..<3 { client.send(.ack(id: "held-\(index)")) }
                    for _ in 0..<3 {
                        guard case .result(_, .delivered) = try await worker.receive() else {
                            Issue.record("expected delivered")
                            return
                        }
                    }
                }
                client.send(.subscribe(key: keys[3]))
                #expect(try await client.receive() == .subscribed(key: keys[3]))
                #expect(try await client.receive() == .outcome(try keyed("over", 3)))
            }
        }
    }
}

/// A text one task records and another reads.
final class RecordedText: Sendable {
    private let text = Mutex<String?>(nil)
    var value: String? { text.withLock { $0 } }
    func set(_ value: String) { text.withLock { $0 = value } }
}

/// Polls `condition` every 20 ms until it holds (fails after `timeout`).
func waitUntil(
    timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else {
            throw TestFailure("condition not met within \(timeout)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
