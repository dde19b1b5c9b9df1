import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import Testing

@Suite("WebSocket flows")
struct WebSocketFlowTests {
    let key = ProcessInstanceKey(2_251_799_813_685_249)!

    func outcome(_ id: String, key: ProcessInstanceKey? = nil, variables: String = #"{"ok":true}"#) throws -> Outcome {
        try Outcome(id: id, key: key ?? self.key, variables: Array(variables.utf8))
    }

    @Test func subscribeDeliverAck() async throws {
        try await withServer { server in
            try await withSocket(server) { client in
                try await client.hello(.client, clientID: "fe-1")
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                try await withSocket(server) { worker in
                    try await worker.hello(.worker, clientID: "w-1")
                    let sent = try outcome("job-1", variables: #"{ "order" : { "id" : 7, "items" : [1,2] } }"#)
                    worker.send(.outcome(sent))
                    #expect(try await client.receive() == .outcome(sent))
                    client.send(.ack(id: "job-1"))
                    #expect(try await worker.receive() == .result(id: "job-1", status: .delivered))
                }
                client.send(.unsubscribe(key: key))
                #expect(try await client.receive() == .unsubscribed(key: key))
            }
            #expect(server.metric("affinity_outcomes_delivered_total") == 1)
        }
    }

    @Test func outcomeBeforeSubscribeIsParkedThenDelivered() async throws {
        try await withServer { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                worker.send(.outcome(try outcome("early")))
                #expect(try await worker.receive() == .result(id: "early", status: .parked))
            }
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                #expect(try await client.receive() == .outcome(try outcome("early")))
                client.send(.ack(id: "early"))
                await client.expectSilence()
            }
            // acked: a new subscription finds nothing parked
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                await client.expectSilence()
            }
            #expect(server.metric("affinity_outcomes_parked_total") == 1)
        }
    }

    @Test func unackedParkedOutcomeIsDeliveredAgain() async throws {
        try await withServer { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                worker.send(.outcome(try outcome("p1")))
                #expect(try await worker.receive() == .result(id: "p1", status: .parked))
            }
            for _ in 0..<2 {
                try await withSocket(server) { client in
                    try await client.hello(.client)
                    client.send(.subscribe(key: key))
                    #expect(try await client.receive() == .subscribed(key: key))
                    #expect(try await client.receive() == .outcome(try outcome("p1")))
                }
            }
        }
    }

    @Test func severalOutcomesKeepTheirOrder() async throws {
        try await withServer { server in
            let ids = (1...8).map { "o\($0)" }
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                for id in ids { worker.send(.outcome(try outcome(id))) }
                for id in ids { #expect(try await worker.receive() == .result(id: id, status: .parked)) }
            }
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                for id in ids {
                    #expect(try await client.receive() == .outcome(try outcome(id)))
                    client.send(.ack(id: id))
                }
                // live outcomes after the parked ones, also in order (multi-shot subscription)
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    let live = (1...5).map { "live\($0)" }
                    for id in live { worker.send(.outcome(try outcome(id))) }
                    for id in live {
                        #expect(try await client.receive() == .outcome(try outcome(id)))
                        client.send(.ack(id: id))
                        #expect(try await worker.receive() == .result(id: id, status: .delivered))
                    }
                }
            }
        }
    }

    @Test func noAckInTimeParksAndALateAckRemovesIt() async throws {
        try await withServer({ $0.ackTimeout = .milliseconds(300) }) { server in
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                _ = try await client.receive()
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    worker.send(.outcome(try outcome("slow")))
                    #expect(try await client.receive() == .outcome(try outcome("slow")))
                    #expect(try await worker.receive() == .result(id: "slow", status: .parked))
                }
                client.send(.ack(id: "slow"))
                await client.expectSilence(for: .milliseconds(200))
            }
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                await client.expectSilence()
            }
        }
    }

    @Test func disconnectWithUnackedOutcomeParksIt() async throws {
        try await withServer({ $0.ackTimeout = .seconds(10) }) { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                try await withSocket(server) { client in
                    try await client.hello(.client)
                    client.send(.subscribe(key: key))
                    _ = try await client.receive()
                    worker.send(.outcome(try outcome("inflight")))
                    #expect(try await client.receive() == .outcome(try outcome("inflight")))
                }
                #expect(try await worker.receive() == .result(id: "inflight", status: .parked))
            }
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                _ = try await client.receive()
                #expect(try await client.receive() == .outcome(try outcome("inflight")))
            }
        }
    }

    /// An unsubscribe releases the outcomes sent on that key and not acked yet: the worker is
    /// answered `parked` at once instead of after the ack timeout (30 s here, longer than the
    /// socket's receive timeout, so waiting for it would fail the test).
    @Test func unsubscribeWithUnackedOutcomeParksItAtOnce() async throws {
        try await withServer({ $0.ackTimeout = .seconds(30) }) { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                try await withSocket(server) { client in
                    try await client.hello(.client)
                    client.send(.subscribe(key: key))
                    _ = try await client.receive()
                    worker.send(.outcome(try outcome("released")))
                    #expect(try await client.receive() == .outcome(try outcome("released")))
                    client.send(.unsubscribe(key: key))
                    #expect(try await client.receive() == .unsubscribed(key: key))
                    #expect(try await worker.receive() == .result(id: "released", status: .parked))
                    client.send(.subscribe(key: key))
                    #expect(try await client.receive() == .subscribed(key: key))
                    #expect(try await client.receive() == .outcome(try outcome("released")))
                }
            }
        }
    }

    @Test func parkedOutcomesExpire() async throws {
        try await withServer({ $0.parkTTL = .milliseconds(200) }) { server in
            try await withSocket(server) { worker in
                try await worker.hello(.worker)
                worker.send(.outcome(try outcome("gone")))
                #expect(try await worker.receive() == .result(id: "gone", status: .parked))
            }
            try await Task.sleep(for: .milliseconds(500))
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                await client.expectSilence()
            }
            #expect(server.metric("affinity_outcomes_expired_total") == 1)
        }
    }

    @Test func outcomesGoOnlyToSubscribersOfTheirKey() async throws {
        let other = ProcessInstanceKey(99)!
        try await withServer { server in
            try await withSocket(server) { a in
                try await a.hello(.client, clientID: "a")
                a.send(.subscribe(key: key))
                _ = try await a.receive()
                try await withSocket(server) { b in
                    try await b.hello(.client, clientID: "b")
                    b.send(.subscribe(key: other))
                    _ = try await b.receive()
                    try await withSocket(server) { worker in
                        try await worker.hello(.worker)
                        worker.send(.outcome(try outcome("for-b", key: other)))
                        #expect(try await b.receive() == .outcome(try outcome("for-b", key: other)))
                        b.send(.ack(id: "for-b"))
                        #expect(try await worker.receive() == .result(id: "for-b", status: .delivered))
                    }
                    await a.expectSilence()
                }
            }
        }
    }

    @Test func largeOutcomePasses() async throws {
        try await withServer { server in
            let filler = String(repeating: "x", count: (1 << 20) - 200)
            let big = try outcome("big", variables: #"{"blob":"\#(filler)"}"#)
            #expect(AffinityMessage.outcome(big).encoded().count <= 1 << 20)
            try await withSocket(server) { client in
                try await client.hello(.client)
                client.send(.subscribe(key: key))
                _ = try await client.receive()
                try await withSocket(server) { worker in
                    try await worker.hello(.worker)
                    worker.send(.outcome(big))
                    #expect(try await client.receive() == .outcome(big))
                    client.send(.ack(id: "big"))
                    #expect(try await worker.receive() == .result(id: "big", status: .delivered))
                }
            }
        }
    }
}

@Suite("Shared store")
struct SharedStoreTests {
    @Test func routesOfLocalSubscriptionsAreWrittenBack() async throws {
        let store = InMemoryOutcomeStore(parkTTL: .seconds(60))
        let key = ProcessInstanceKey(31)!
        let route = Route(replicaID: "test-replica", clientID: "fe-9")
        try await withServer({ $0.routeRefreshInterval = .milliseconds(100) }, store: store) { server in
            try await withSocket(server) { client in
                try await client.hello(.client, clientID: "fe-9")
                client.send(.subscribe(key: key))
                #expect(try await client.receive() == .subscribed(key: key))
                #expect(store.route(of: key) == route)
                // the route is lost in the store (e.g. it expired during an outage) ...
                try await store.unsubscribe(key: key, route: route, acknowledged: [])
                #expect(store.route(of: key) == nil)
                // ... and written back by the refresher
                try await Task.sleep(for: .milliseconds(400))
                #expect(store.route(of: key) == route)
            }
            // disconnecting removes the route
            try await Task.sleep(for: .milliseconds(100))
            #expect(store.route(of: key) == nil)
        }
    }
}
