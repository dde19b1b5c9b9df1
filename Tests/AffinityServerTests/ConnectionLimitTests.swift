import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import HTTPTypes
import Testing

@Suite("Connections")
struct ConnectionLimitTests {
    @Test func slowConsumerIsClosedAndItsOutcomesAreParked() async throws {
        let count = 48
        try await withServer({
            $0.maxOutboundBytes = 256 << 10
            $0.ackTimeout = .seconds(2)
        }) { server in
            let gate = ReadGate()
            try await withSocket(server, pauseReading: gate) { slow in
                slow.send(.hello(role: .client, clientId: "slow"))
                for index in 1...count { slow.send(.subscribe(key: ProcessInstanceKey(Int64(index))!)) }
                try await Task.sleep(for: .milliseconds(300))
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    let filler = String(repeating: "s", count: 250_000)
                    for index in 1...count {
                        worker.send(
                            .outcome(
                                try Outcome(
                                    id: "big-\(index)", key: ProcessInstanceKey(Int64(index))!,
                                    variables: Array(#"{"f":"\#(filler)"}"#.utf8))))
                    }
                    var parked = 0
                    for _ in 1...count {
                        guard case .result(_, let status) = try await worker.receive(timeout: .seconds(15)) else {
                            throw TestFailure("expected a result")
                        }
                        if status == .parked { parked += 1 }
                    }
                    #expect(parked == count)
                }
                #expect(server.metric("affinity_slow_consumer_closes_total") == 1)
                gate.open()
                // the slow client is dropped: its stream ends (with 1008 when the close frame got through)
                var last: SocketEvent?
                while let event = await slow.nextEvent(timeout: .seconds(10)) {
                    last = event
                    if case .text = event { continue }
                    break
                }
                switch last {
                case .closed(let code, _): #expect(code == nil || code == 1008)
                case .failed: break
                default: Issue.record("the slow consumer was not closed: \(String(describing: last))")
                }
            }
            #expect(server.metric("affinity_outcomes_parked_total") == Double(count))
        }
    }

    @Test func drainSendsDrainThenCloses1001AndRefusesNewWork() async throws {
        // The lagging client reads only after the checks below; a long close handshake timeout keeps its
        // connection (and so the drain) open until then however slow the machine is.
        try await withServer({
            $0.metricsPort = 0
            $0.closeHandshakeTimeout = .seconds(60)
        }) { server in
            let gate = ReadGate()
            try await withSocket(server, pauseReading: gate) { lagging in
                lagging.send(.hello(role: .client, clientId: "lagging"))
                try await withSocket(server) { client in
                    try await client.hello(.client)
                    try await Task.sleep(for: .milliseconds(100))
                    await server.beginShutdown()
                    #expect(try await client.receive() == .drain)
                    #expect(await client.nextEvent() == .closed(code: 1001, reason: "draining"))
                }
                // the lagging client has not answered the close yet, so the drain is still running
                let ready = try await AuthTests().status(server.metricsPort!, "/health/ready", token: nil)
                #expect(ready == .serviceUnavailable)
                let upgrade = try await AuthTests().status(server.port, "/v1/ws", token: nil, upgrade: true)
                #expect(upgrade == .serviceUnavailable)
                gate.open()
                #expect(try await lagging.receive() == .welcome(replica: "test-replica", protocolVersion: 1))
                #expect(try await lagging.receive() == .drain)
                #expect(await lagging.nextEvent() == .closed(code: 1001, reason: "draining"))
            }
        }
    }
}

@Suite("Dead peers")
struct DeadPeerTests {
    @Test func aPeerThatDoesNotAnswerPingsIsDropped() async throws {
        try await withServer({ $0.pingInterval = .milliseconds(200) }) { server in
            let gate = ReadGate()
            try await withSocket(server, pauseReading: gate) { silent in
                silent.send(.hello(role: .client, clientId: "silent"))
                // the paused client answers no ping; the server drops it after a missed pong
                let deadline = ContinuousClock.now + .seconds(5)
                var connections = 1.0
                while ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    connections = server.metricsText().split(separator: "\n")
                        .filter { $0.hasPrefix("affinity_connections{") }
                        .compactMap { Double($0.split(separator: " ").last ?? "") }
                        .reduce(0, +)
                    if connections == 0 { break }
                }
                #expect(connections == 0)
                gate.open()
            }
        }
    }

    @Test func aResponsivePeerStaysConnectedOverSeveralPingPeriods() async throws {
        try await withServer({ $0.pingInterval = .seconds(2) }) { server in
            try await withSocket(server) { client in
                try await client.hello(.client)
                try await Task.sleep(for: .milliseconds(4500))
                client.send(.subscribe(key: ProcessInstanceKey(3)!))
                #expect(try await client.receive() == .subscribed(key: ProcessInstanceKey(3)!))
            }
        }
    }
}
