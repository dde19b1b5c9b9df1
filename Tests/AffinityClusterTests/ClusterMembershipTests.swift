import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Who may take part in a cluster: only peers with a certificate from the cluster CA forward, and a replica
    /// id is held by one live process at a time.
    @Suite("membership and peer trust")
    struct ClusterMembershipTests {
        /// r3 presents a self-signed peer certificate. Its forward to r1 fails the TLS handshake, so the worker's
        /// outcome is parked (the route still points at r1), never delivered through r3; r1 accepted no delivery
        /// and counted the refused handshake. The same outcome through r2 (a CA certificate) is delivered, and the
        /// parked copy reaches the client when it subscribes again.
        @Test(.timeLimit(.minutes(2)))
        func replicaWithSelfSignedCertificateCannotForward() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(id: "r1")
                let r2 = try await cluster.start(id: "r2")
                let rogue = try await cluster.start(
                    id: "r3", identity: try await offloaded { [pki = cluster.pki] in try pki.selfSigned("r3") })
                let key = ProcessInstanceKey(2_251_799_813_686_001)!
                let viaRogue = try Outcome(id: "job-rogue", key: key, variables: Array(#"{"via":"r3"}"#.utf8))
                let viaTrusted = try Outcome(id: "job-trusted", key: key, variables: Array(#"{"via":"r2"}"#.utf8))

                try await withClusterSocket(port: try r1.port) { client in
                    _ = try await client.hello(role: .client, clientId: "front-1")
                    client.send(.subscribe(key: key))
                    #expect(try await client.next() == .subscribed(key: key))

                    let rogueAnswer = try await withClusterSocket(port: try rogue.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker-rogue")
                        return try await deliver([viaRogue], through: worker, window: 1)
                    }
                    #expect(rogueAnswer["job-rogue"] != "delivered")
                    #expect(rogueAnswer["job-rogue"] == "parked")

                    let trustedAnswer = try await withClusterSocket(port: try r2.port) { worker in
                        _ = try await worker.hello(role: .worker, clientId: "worker-trusted")
                        async let answer = deliver([viaTrusted], through: worker, window: 1)
                        // The first message the client sees is the trusted outcome, not the rogue one.
                        guard case .outcome(let first) = try await client.next() else {
                            throw FixtureError("expected an outcome")
                        }
                        #expect(first.id == "job-trusted")
                        client.send(.ack(id: first.id))
                        return try await answer
                    }
                    #expect(trustedAnswer == ["job-trusted": "delivered"])

                    // Re-subscribing picks up the parked copy of the outcome r3 could not forward.
                    client.send(.subscribe(key: key))
                    #expect(try await client.next() == .subscribed(key: key))
                    guard case .outcome(let parked) = try await client.next() else {
                        throw FixtureError("expected the parked outcome")
                    }
                    #expect(parked == viaRogue)
                    client.send(.ack(id: parked.id))
                }

                let metrics = try await httpGet(port: try r1.port, path: "/metrics").body
                #expect(metricValue(metrics, #"affinity_peer_deliveries_received_total{status="delivered"}"#) == 1)
                #expect(metricValue(metrics, #"affinity_peer_tls_handshake_failures_total{side="server"}"#) >= 1)
            }
        }

        /// A second process started with the id of a live replica refuses to start with one clear line, and the
        /// first replica keeps serving (and stays ready).
        @Test(.timeLimit(.minutes(2)))
        func replicaIdAliveElsewhereRefusesToStart() async throws {
            try await withClusterEnvironment { cluster in
                let first = try await cluster.start(id: "r1")
                let second = try await cluster.launch(id: "r1")
                let status = await second.waitForExit(timeout: .seconds(30))
                #expect(status == 1)
                let lines = second.log.split(separator: "\n").filter { $0.hasPrefix("affinity-server:") }
                #expect(lines.count == 1)
                #expect(lines.first?.contains("replica_id_in_use") == true)
                #expect(lines.first?.contains("'r1'") == true)
                #expect(first.isRunning)
                let ready = try await httpGet(port: try first.port, path: "/health/ready")
                #expect(ready.status == 200)
            }
        }

        /// Cluster mode without the peer TLS files stops at once with one line naming them.
        @Test func clusterModeRequiresPeerTLSFiles() async throws {
            try await withTemporaryDirectory { directory in
                let (status, text) = try await runServerExpectingItToStop(
                    ["--redis-url", "redis://127.0.0.1:1", "--port", "0"], in: directory)
                #expect(status == 2, "\(text)")
                #expect(text.split(separator: "\n").count == 1)
                #expect(text.contains("--peer-tls-cert, --peer-tls-key and --peer-tls-ca"))
            }
        }
    }
}
