import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import Testing

@Suite("Bad input")
struct BadInputTests {
    let key = ProcessInstanceKey(42)!

    @Test func eachViolationGetsAnErrorAndTheConnectionSurvives() async throws {
        try await withServer({
            $0.maxSubscriptions = 2; $0.maxMessageBytes = 4096
        }) { server in
            try await withSocket(server) { socket in
                socket.send(#"{"type":"subscribe","key":"42"}"#)
                try await socket.expectError(.badRequest)  // before hello
                socket.send("not json")
                try await socket.expectError(.badRequest)
                socket.send("[1,2,3]")
                try await socket.expectError(.badRequest)
                socket.send(#"{"type":"dance"}"#)
                try await socket.expectError(.unknownType)
                socket.send(#"{"type":"hello","role":"client"}"#)
                try await socket.expectError(.badRequest)
                socket.sendBinary(Array(#"{"type":"hello","role":"client","clientId":"x"}"#.utf8))
                try await socket.expectError(.badRequest)
                socket.send(#"{"type":"hello","role":"client","clientId":"c"}"# + String(repeating: " ", count: 5000))
                try await socket.expectError(.tooLarge)
                try await socket.hello(.client)
                socket.send(.hello(role: .client, clientId: "again"))
                try await socket.expectError(.badRequest)
                socket.send(#"{"type":"subscribe","key":"0042"}"#)
                try await socket.expectError(.badRequest, ref: "0042")
                socket.send(#"{"type":"subscribe","key":"-5"}"#)
                try await socket.expectError(.badRequest, ref: "-5")
                socket.send(#"{"type":"subscribe","key":"9223372036854775808"}"#)
                try await socket.expectError(.badRequest)
                socket.send(#"{"type":"subscribe","key":42}"#)
                try await socket.expectError(.badRequest)
                socket.send(#"{"type":"subscribe"}"#)
                try await socket.expectError(.badRequest)
                socket.send(#"{"type":"outcome","id":"1","key":"42","variables":{}}"#)
                try await socket.expectError(.forbidden, ref: "1")  // a client may not deliver
                socket.send(#"{"type":"welcome","replica":"x","protocol":1}"#)
                try await socket.expectError(.unknownType)
                for index in 1...2 {
                    socket.send(.subscribe(key: ProcessInstanceKey(Int64(index))!))
                    #expect(try await socket.receive() == .subscribed(key: ProcessInstanceKey(Int64(index))!))
                }
                socket.send(.subscribe(key: ProcessInstanceKey(3)!))
                try await socket.expectError(.forbidden, ref: "3")
                // still alive and working
                socket.send(.unsubscribe(key: ProcessInstanceKey(1)!))
                #expect(try await socket.receive() == .unsubscribed(key: ProcessInstanceKey(1)!))
                socket.send(.subscribe(key: ProcessInstanceKey(3)!))
                #expect(try await socket.receive() == .subscribed(key: ProcessInstanceKey(3)!))
            }
            #expect(server.metricsText().contains(#"affinity_outcomes_rejected_total{code="bad_request"}"#))
        }
    }

    @Test func workerViolations() async throws {
        try await withServer({ $0.maxMessageBytes = 2048 }) { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                worker.send(.subscribe(key: key))
                try await worker.expectError(.forbidden, ref: "42")
                worker.send(#"{"type":"outcome","id":"o1","key":"42","variables":[1]}"#)
                try await worker.expectError(.badRequest, ref: "o1")
                worker.send(#"{"type":"outcome","id":"o2","key":"4x2","variables":{}}"#)
                try await worker.expectError(.badRequest, ref: "o2")
                worker.send(#"{"type":"outcome","id":"o3","key":"42","variables":{"a":}}"#)
                try await worker.expectError(.badRequest)
                worker.send(#"{"type":"outcome","id":"","key":"42","variables":{}}"#)
                try await worker.expectError(.badRequest)
                let big = String(repeating: "y", count: 3000)
                worker.send(#"{"type":"outcome","id":"o4","key":"42","variables":{"b":"\#(big)"}}"#)
                try await worker.expectError(.tooLarge, ref: "o4")
                // the id after the oversized variables is not in the kept prefix: no ref, still too_large
                let bigger = String(repeating: "z", count: 6000)
                worker.send(#"{"type":"outcome","key":"42","variables":{"b":"\#(bigger)"},"id":"o4b"}"#)
                let refused = try await worker.receive()
                #expect(refused == .error(code: .tooLarge, message: "message larger than 2048 bytes", ref: nil))
                worker.send(#"{"type":"outcome","id":"o5","key":"42","variables":{}}"#)
                #expect(try await worker.receive() == .result(id: "o5", status: .parked))
            }
        }
    }

    @Test func aPeerThatKeepsViolatingIsClosedWith1008AndOthersAreUnaffected() async throws {
        try await withServer({ $0.maxConsecutiveErrors = 20 }) { server in
            try await withSocket(server) { good in
                try await good.hello(.client, clientID: "good")
                good.send(.subscribe(key: key))
                _ = try await good.receive()
                try await withSocket(server) { bad in
                    for _ in 0..<25 { bad.send("garbage") }
                    var errors = 0
                    var closed: SocketEvent?
                    while let event = await bad.nextEvent() {
                        if case .text = event {
                            errors += 1
                        } else {
                            closed = event
                            break
                        }
                    }
                    #expect(errors == 20)
                    #expect(closed == .closed(code: 1008, reason: "too many protocol errors"))
                }
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    let outcome = try Outcome(id: "still", key: key, variables: Array("{}".utf8))
                    worker.send(.outcome(outcome))
                    #expect(try await good.receive() == .outcome(outcome))
                    good.send(.ack(id: "still"))
                    #expect(try await worker.receive() == .result(id: "still", status: .delivered))
                }
            }
        }
    }

    /// At `maxOutcomesInFlight`, the replica reads no further outcome from the worker (nothing is
    /// refused): the third outcome reaches the client only once the first was answered.
    @Test func outcomesPastTheInFlightBoundWaitUnreadUntilAnAnswerMakesRoom() async throws {
        try await withServer({
            $0.maxOutcomesInFlight = 2
            $0.ackTimeout = .seconds(30)
        }) { server in
            // one key each: outcomes of the same key are delivered one after the other anyway
            let keys = (42...44).map { ProcessInstanceKey(Int64($0))! }
            try await withSocket(server) { client in
                try await client.hello(.client)
                for subscribed in keys {
                    client.send(.subscribe(key: subscribed))
                    _ = try await client.receive()
                }
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    let outcomes = try zip(["q1", "q2", "q3"], keys).map {
                        try Outcome(id: $0, key: $1, variables: Array("{}".utf8))
                    }
                    for outcome in outcomes { worker.send(.outcome(outcome)) }
                    #expect(try await client.receive() == .outcome(outcomes[0]))
                    #expect(try await client.receive() == .outcome(outcomes[1]))
                    await client.expectSilence(for: .milliseconds(500))
                    await worker.expectSilence(for: .zero)
                    client.send(.ack(id: "q1"))
                    #expect(try await worker.receive() == .result(id: "q1", status: .delivered))
                    #expect(try await client.receive() == .outcome(outcomes[2]))
                    client.send(.ack(id: "q2"))
                    client.send(.ack(id: "q3"))
                    #expect(try await worker.receive() == .result(id: "q2", status: .delivered))
                    #expect(try await worker.receive() == .result(id: "q3", status: .delivered))
                }
            }
        }
    }

    /// The bound in bytes: with room for one outcome of this size only, the next waits for the answer
    /// to the first, on any key; an outcome larger than the bound still passes alone.
    @Test func outcomesPastTheInFlightBytesWaitUnreadUntilAnAnswerMakesRoom() async throws {
        let other = ProcessInstanceKey(43)!
        try await withServer({
            $0.maxInFlightBytes = 1500
            $0.ackTimeout = .seconds(30)
        }) { server in
            try await withSocket(server) { client in
                try await client.hello(.client)
                for subscribed in [key, other] {
                    client.send(.subscribe(key: subscribed))
                    _ = try await client.receive()
                }
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    let padding = String(repeating: "p", count: 1000)
                    let first = try Outcome(id: "b1", key: key, variables: Array(#"{"p":"\#(padding)"}"#.utf8))
                    let second = try Outcome(id: "b2", key: other, variables: Array(#"{"p":"\#(padding)"}"#.utf8))
                    let large = try Outcome(
                        id: "b3", key: other, variables: Array(#"{"p":"\#(padding)\#(padding)"}"#.utf8))
                    for outcome in [first, second, large] { worker.send(.outcome(outcome)) }
                    #expect(try await client.receive() == .outcome(first))
                    await client.expectSilence(for: .milliseconds(500))
                    client.send(.ack(id: "b1"))
                    #expect(try await worker.receive() == .result(id: "b1", status: .delivered))
                    #expect(try await client.receive() == .outcome(second))
                    await client.expectSilence(for: .milliseconds(300))
                    client.send(.ack(id: "b2"))
                    #expect(try await worker.receive() == .result(id: "b2", status: .delivered))
                    #expect(try await client.receive() == .outcome(large))
                    client.send(.ack(id: "b3"))
                    #expect(try await worker.receive() == .result(id: "b3", status: .delivered))
                }
            }
        }
    }
}
