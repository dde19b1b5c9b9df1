import AffinityProtocol
import AffinityServer
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

    @Test func tooManyOutcomesInProgressAreRefusedWithUnavailable() async throws {
        try await withServer({
            $0.maxOutcomesInProgress = 2
            $0.ackTimeout = .seconds(1)
        }) { server in
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                _ = try await client.receive()
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    for id in ["q1", "q2", "q3"] {
                        worker.send(.outcome(try Outcome(id: id, key: key, variables: Array("{}".utf8))))
                    }
                    try await worker.expectError(.unavailable, ref: "q3")
                    #expect(try await worker.receive() == .result(id: "q1", status: .parked))
                    #expect(try await worker.receive() == .result(id: "q2", status: .parked))
                }
            }
        }
    }
}
