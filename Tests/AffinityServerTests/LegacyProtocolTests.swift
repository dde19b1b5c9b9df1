import AffinityProtocol
import AffinityTestSupport
import Foundation
import HTTPTypes
import Testing

@testable import AffinityServer

/// Issue #17 on one replica (embedded store): the Node package's protocol on `/` with `--legacy-protocol`.
/// The three-replica behaviour is in AffinityClusterTests (`LegacyProtocolTests`).
@Suite("Legacy protocol (one replica)")
struct LegacyProtocolServerTests {
    let key = ProcessInstanceKey(2_251_799_813_699_001)!

    func legacyURL(_ server: TestServer) -> String { "ws://127.0.0.1:\(server.port)/" }

    /// Waits until `count` legacy clients registered (their frames are read by their own sessions).
    func waitForLegacyClients(_ server: TestServer, _ count: Double) async throws {
        try await waitUntil { server.metric(#"affinity_legacy_connections{role="client"}"#) == count }
    }

    func legacyFrame(_ event: SocketEvent?) -> [String: Any]? {
        guard case .text(let text) = event else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    @Test func legacyAndV1ClientsAndWorkersInteroperate() async throws {
        try await withServer({ $0.legacyProtocol = true }) { server in
            try await withSocket(url: legacyURL(server)) { legacyClient in
                legacyClient.send(#"{"type":"REGISTER_CLIENT"}"#)
                try await waitForLegacyClients(server, 1)
                try await withSocket(server) { v1Client in
                    try await v1Client.hello(.client)
                    v1Client.send(.subscribe(key: key))
                    #expect(try await v1Client.receive() == .subscribed(key: key))
                    try await withSocket(url: legacyURL(server)) { legacyWorker in
                        legacyWorker.send(#"{"type":"REGISTER_WORKER"}"#)
                        legacyWorker.send(
                            #"{"type":"PROCESS_OUTCOME","processInstanceKey":"\#(key)","variables":{"a" : [1, 2]}}"#)
                        let frame = legacyFrame(await legacyClient.nextEvent())
                        #expect(frame?["type"] as? String == "PROCESS_OUTCOME")
                        #expect(frame?["processInstanceKey"] as? String == key.description)
                        // the v1 subscriber receives it with a generated id, variables byte for byte
                        guard case .outcome(let outcome) = try await v1Client.receive() else {
                            Issue.record("expected an outcome")
                            return
                        }
                        #expect(outcome.id.hasPrefix("legacy-"))
                        #expect(outcome.variables == Array(#"{"a" : [1, 2]}"#.utf8))
                        v1Client.send(.ack(id: outcome.id))
                        // no subscriber for this key: parked for a later v1 subscriber
                        let later = ProcessInstanceKey(2_251_799_813_699_002)!
                        legacyWorker.send(
                            #"{"type":"PROCESS_OUTCOME","processInstanceKey":\#(later),"variables":{"b":true}}"#)
                        #expect(
                            legacyFrame(await legacyClient.nextEvent())?["processInstanceKey"] as? String
                                == later.description)
                        await legacyWorker.expectSilence()
                        v1Client.send(.subscribe(key: later))
                        #expect(try await v1Client.receive() == .subscribed(key: later))
                        guard case .outcome(let parked) = try await v1Client.receive() else {
                            Issue.record("expected the parked legacy outcome")
                            return
                        }
                        #expect(parked.variables == Array(#"{"b":true}"#.utf8))
                    }
                    // a protocol v1 worker's outcome reaches the legacy client
                    try await withSocket(server) { v1Worker in
                        try await v1Worker.hello(.worker)
                        v1Worker.send(.outcome(try Outcome(id: "v1", key: key, variables: Array(#"{"c":3}"#.utf8))))
                        let frame = legacyFrame(await legacyClient.nextEvent())
                        #expect((frame?["variables"] as? [String: Any])?["c"] as? Int == 3)
                        #expect(
                            try await v1Client.receive()
                                == .outcome(try Outcome(id: "v1", key: key, variables: Array(#"{"c":3}"#.utf8))))
                        v1Client.send(.ack(id: "v1"))
                        #expect(try await v1Worker.receive() == .result(id: "v1", status: .delivered))
                    }
                }
            }
            #expect(server.metric(#"affinity_legacy_outcomes_total{direction="received"}"#) == 2)
            #expect(server.metric(#"affinity_legacy_outcomes_total{direction="sent"}"#) == 3)
        }
    }

    @Test func malformedLegacyFramesAreCountedNotAnswered() async throws {
        try await withServer({ $0.legacyProtocol = true }) { server in
            try await withSocket(url: legacyURL(server)) { legacy in
                for frame in [
                    "not json", #"{"type":"PROCESS_OUTCOME"}"#,
                    #"{"type":"PROCESS_OUTCOME","processInstanceKey":"-1","variables":{}}"#,
                    #"{"type":"PROCESS_OUTCOME","processInstanceKey":"5","variables":[1]}"#, #"{"type":"SOMETHING"}"#,
                    #"{"no":"type"}"#,
                ] {
                    legacy.send(frame)
                }
                legacy.sendBinary([1, 2, 3])
                await legacy.expectSilence(for: .milliseconds(500))
                // still served
                legacy.send(#"{"type":"REGISTER_CLIENT"}"#)
                try await waitForLegacyClients(server, 1)
                try await withSocket(url: legacyURL(server)) { worker in
                    worker.send(#"{"type":"PROCESS_OUTCOME","processInstanceKey":"5","variables":{}}"#)
                    #expect(legacyFrame(await legacy.nextEvent())?["processInstanceKey"] as? String == "5")
                }
            }
            #expect(server.metric("affinity_legacy_invalid_frames_total") == 7)
        }
    }

    @Test func aLegacyClientThatDoesNotReadIsClosedAsASlowConsumer() async throws {
        try await withServer({
            $0.legacyProtocol = true
            $0.maxOutboundBytes = 1 << 20
            $0.closeHandshakeTimeout = .milliseconds(500)
        }) { server in
            let gate = ReadGate()
            try await withSocket(url: legacyURL(server), pauseReading: gate) { stuck in
                stuck.send(#"{"type":"REGISTER_CLIENT"}"#)
                try await withSocket(url: legacyURL(server)) { reader in
                    reader.send(#"{"type":"REGISTER_CLIENT"}"#)
                    try await waitForLegacyClients(server, 2)
                    try await withSocket(url: legacyURL(server)) { worker in
                        // 20 MB in batches of 20 outcomes (400 kB), each read by the reading client before the next: the
                        // stuck client's kernel buffers fill, then its 1 MiB outbound budget, and it is closed
                        let pad = String(repeating: "p", count: 20_000)
                        for batch in 0..<50 {
                            for index in (batch * 20)..<(batch * 20 + 20) {
                                worker.send(
                                    #"{"type":"PROCESS_OUTCOME","processInstanceKey":"\#(index + 1)","variables":{"pad":"\#(pad)"}}"#
                                )
                            }
                            for index in (batch * 20)..<(batch * 20 + 20) {
                                let frame = legacyFrame(await reader.nextEvent(timeout: .seconds(20)))
                                #expect(frame?["processInstanceKey"] as? String == String(index + 1))
                            }
                        }
                    }
                }
                try await waitUntil { (server.metric("affinity_slow_consumer_closes_total") ?? 0) >= 1 }
            }
        }
    }

    @Test func legacyConnectionsCountAgainstTheConnectionLimit() async throws {
        try await withServer({
            $0.legacyProtocol = true
            $0.maxConnections = 1
        }) { server in
            try await withSocket(url: legacyURL(server)) { legacy in
                legacy.send(#"{"type":"REGISTER_CLIENT"}"#)
                try await waitUntil { (server.metric(#"affinity_legacy_connections{role="client"}"#) ?? 0) >= 1 }
                #expect(
                    try await AuthTests().status(server.port, "/", token: nil, upgrade: true) == .serviceUnavailable)
                #expect(
                    try await AuthTests().status(server.port, "/v1/ws", token: nil, upgrade: true)
                        == .serviceUnavailable)
            }
        }
    }

    @Test func legacyFramesParse() throws {
        #expect(try LegacyMessage.decode(Array(#"{"type":"REGISTER_CLIENT"}"#.utf8)) == .registerClient)
        #expect(try LegacyMessage.decode(Array(#"{"type":"REGISTER_WORKER","extra":1}"#.utf8)) == .registerWorker)
        #expect(
            try LegacyMessage.decode(
                Array(#"{"type":"PROCESS_OUTCOME","processInstanceKey":"42","variables":{"x":1}}"#.utf8))
                == .processOutcome(key: ProcessInstanceKey(42)!, variables: Array(#"{"x":1}"#.utf8)))
        #expect(
            try LegacyMessage.decode(Array(#"{"type":"PROCESS_OUTCOME","processInstanceKey":42,"variables":{}}"#.utf8))
                == .processOutcome(key: ProcessInstanceKey(42)!, variables: Array("{}".utf8)))
        for bad in [#"{"type":"PROCESS_OUTCOME","processInstanceKey":4.2,"variables":{}}"#, #"{"type":1}"#, "[]"] {
            #expect(throws: AffinityError.self) { try LegacyMessage.decode(Array(bad.utf8)) }
        }
        let outcome = try Outcome(id: "i", key: ProcessInstanceKey(7)!, variables: Array(#"{ "v" : "\u00e9" }"#.utf8))
        #expect(
            LegacyMessage.outcomeFrame(outcome)
                == Array(#"{"type":"PROCESS_OUTCOME","processInstanceKey":"7","variables":{ "v" : "\u00e9" }}"#.utf8))
    }
}
