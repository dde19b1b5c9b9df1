import AffinityProtocol
import AffinityTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOPosix
import Testing

@testable import AffinityPeer

@Suite("Peer channel mutual TLS")
struct PeerMutualTLSTests {
    @Test("a caller with a self-signed certificate is refused and its forward fails with a TLS error")
    func selfSignedClientRefused() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            // The intruder trusts the cluster CA (so it accepts the server) but its own certificate is not from it.
            let intruder = try makeCredentials(try pki.selfSigned("intruder"), trusting: ca.certificatePath)
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { server, address async throws in
                try await withPeerPool(credentials: intruder) { pool async throws in
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(), to: address, timeout: .seconds(3))
                    }
                    #expect(error?.code == .tls, "\(String(describing: error))")
                    #expect(server.acceptedConnectionCount >= 1)
                }
            }
            #expect(await handler.outcomes.isEmpty)
        }
    }

    @Test("a caller with a certificate from another CA is refused")
    func foreignCAClientRefused() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let other = try pki.makeAuthority("other")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            let foreign = try makeCredentials(try pki.issue("replica-x", by: other), trusting: ca.certificatePath)
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                try await withPeerPool(credentials: foreign) { pool async throws in
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(), to: address, timeout: .seconds(3))
                    }
                    #expect(error?.code == .tls, "\(String(describing: error))")
                }
            }
            #expect(await handler.outcomes.isEmpty)
        }
    }

    @Test("a caller without a client certificate is refused")
    func clientWithoutCertificateRefused() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                // A plain gRPC client that trusts the cluster CA but presents no certificate.
                let transport = try HTTP2ClientTransport.Posix(
                    target: .ipv4(address: address.host, port: address.port),
                    transportSecurity: .tls { tls in
                        tls.trustRoots = .certificates([.file(path: ca.certificatePath, format: .pem)])
                        tls.serverCertificateVerification = .noHostnameVerification
                    }
                )
                try await withGRPCClient(transport: transport) { client in
                    var request = Affinity_Peer_V1_DeliverRequest()
                    request.id = "job-1"
                    request.key = "2251799813685249"
                    request.variables = Data("{}".utf8)
                    request.originReplica = "anonymous"
                    var options = CallOptions.defaults
                    options.timeout = .seconds(3)
                    request.requestID = 1
                    let sent = request
                    let error = await #expect(throws: RPCError.self) {
                        try await Affinity_Peer_V1_PeerDelivery.Client(wrapping: client).deliverStream(
                            options: options,
                            requestProducer: { writer in try await writer.write(sent) },
                            onResponse: { response in for try await _ in response.messages {} })
                    }
                    #expect(error?.code == .unavailable, "\(String(describing: error))")
                }
            }
            #expect(await handler.outcomes.isEmpty)
        }
    }

    @Test("garbage and plaintext HTTP/2 on the peer port are dropped; the server keeps serving")
    func garbageOnThePeerPort() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            try await withPeerServer(credentials: serverCredentials, handler: RecordingHandler()) {
                server, address async throws in
                let payloads = [
                    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                    String(repeating: "\u{16}\u{03}\u{01}\u{ff}\u{ff}", count: 2000),
                ]
                for payload in payloads {
                    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .connect(host: address.host, port: address.port).get()
                    try? await channel.writeAndFlush(ByteBuffer(string: payload)).get()
                    // The server closes the connection after the failed handshake.
                    try await channel.closeFuture.get()
                }
                #expect(server.acceptedConnectionCount == payloads.count)
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    #expect(try await pool.deliver(sampleOutcome(), to: address) == .delivered)
                }
            }
        }
    }

    @Test("a server with a certificate from another CA is refused by the client")
    func foreignServerRefused() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let other = try pki.makeAuthority("other")
            // The impostor trusts the cluster CA (it would accept the client) but is not from it.
            let impostor = try makeCredentials(try pki.issue("impostor", by: other), trusting: ca.certificatePath)
            let clientCredentials = try makeCredentials(
                try pki.issue("replica-3", by: ca), trusting: ca.certificatePath)
            let handler = RecordingHandler()
            try await withPeerServer(credentials: impostor, handler: handler) { _, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(), to: address, timeout: .seconds(3))
                    }
                    #expect(error?.code == .tls, "\(String(describing: error))")
                }
            }
            #expect(await handler.outcomes.isEmpty)
        }
    }

    @Test("with an expected server name, the server's certificate must carry it")
    func expectedServerName() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let server = try pki.issue("replica-1", by: ca, names: ["affinity-peer", "affinity-peer.prod.svc"])
            let serverCredentials = try makeCredentials(server, trusting: ca.certificatePath)
            let clientCredentials = try makeCredentials(
                try pki.issue("replica-3", by: ca), trusting: ca.certificatePath)
            try await withPeerServer(credentials: serverCredentials, handler: RecordingHandler()) {
                _, address async throws in
                try await withPeerPool(credentials: clientCredentials, expectedServerName: "affinity-peer.prod.svc") {
                    pool async throws in
                    #expect(try await pool.deliver(sampleOutcome(), to: address) == .delivered)
                }
                try await withPeerPool(credentials: clientCredentials, expectedServerName: "affinity-peer.other.svc") {
                    pool async throws in
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(), to: address, timeout: .seconds(3))
                    }
                    #expect(error?.code == .tls, "\(String(describing: error))")
                }
            }
        }
    }

    @Test("a certificate without the client-auth usage cannot call")
    func serverOnlyCertificateCannotCall() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            let serverOnly = try makeCredentials(
                try pki.issue("web", by: ca, extendedKeyUsage: "serverAuth"), trusting: ca.certificatePath)
            try await withPeerServer(credentials: serverCredentials, handler: RecordingHandler()) {
                _, address async throws in
                try await withPeerPool(credentials: serverOnly) { pool async throws in
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(), to: address, timeout: .seconds(3))
                    }
                    #expect(error?.code == .tls, "\(String(describing: error))")
                }
            }
        }
    }
}
