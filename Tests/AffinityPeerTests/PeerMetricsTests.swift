import AffinityPeer
import AffinityProtocol
import AffinityTestSupport
import Foundation
import MetricsTestKit
import Testing

@Suite("Peer channel metrics")
struct PeerMetricsTests {
    @Test("forwards are counted by result with their latency; refused handshakes are counted on the server")
    func metrics() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverIdentity = try pki.issue("replica-1", by: ca)
            let server = try makeCredentials(serverIdentity, trusting: ca.certificatePath)
            let client = try makeCredentials(try pki.issue("replica-3", by: ca), trusting: ca.certificatePath)
            let intruder = try makeCredentials(try pki.selfSigned("intruder"), trusting: ca.certificatePath)
            let serverMetrics = TestMetrics()
            let clientMetrics = TestMetrics()
            let handler = RecordingHandler { outcome in outcome.id == "job-2" ? .parked : .delivered }
            try await withPeerServer(credentials: server, handler: handler, metrics: serverMetrics) {
                _, address async throws in
                try await withPeerPool(credentials: client, metrics: clientMetrics) { pool async throws in
                    _ = try await pool.deliver(sampleOutcome(1), to: address)
                    _ = try await pool.deliver(sampleOutcome(2), to: address)
                    _ = try await pool.deliver(sampleOutcome(3), to: address)
                }
                try await withPeerPool(credentials: intruder, metrics: clientMetrics) { pool async throws in
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(4), to: address, timeout: .seconds(3))
                    }
                    #expect(error?.code == .tls)
                }
            }
            let forwards = "affinity_peer_forwards_total"
            #expect(clientMetrics.counterTotal(label: forwards, dimensions: [("result", "delivered")]) == 2)
            #expect(clientMetrics.counterTotal(label: forwards, dimensions: [("result", "parked")]) == 1)
            #expect(clientMetrics.counterTotal(label: forwards, dimensions: [("result", "tls")]) == 1)
            let latencies = clientMetrics.timers(
                label: "affinity_peer_forward_duration_seconds", dimensions: [("result", "delivered")])
            #expect(latencies.flatMap(\.values).count == 2)
            #expect(latencies.flatMap(\.values).allSatisfy { $0 > 0 })
            #expect(
                serverMetrics.counterTotal(
                    label: "affinity_peer_deliveries_received_total", dimensions: [("status", "delivered")]) == 2)
            #expect(
                serverMetrics.counterTotal(
                    label: "affinity_peer_tls_handshake_failures_total", dimensions: [("side", "server")]) >= 1)
            #expect(serverMetrics.counterTotal(label: "affinity_peer_connections_accepted_total") >= 2)
        }
    }
}
