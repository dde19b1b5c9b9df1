import AffinityPeer
import AffinityTestSupport
import Foundation
import Testing

@Suite("Peer channel values")
struct PeerUnitTests {
    @Test(
        "peer addresses parse host:port and [ipv6]:port",
        arguments: [
            ("10.0.0.7:9443", PeerAddress(host: "10.0.0.7", port: 9443)),
            ("affinity-0.affinity-peer:9443", PeerAddress(host: "affinity-0.affinity-peer", port: 9443)),
            ("[fd00::7]:9443", PeerAddress(host: "fd00::7", port: 9443)),
        ])
    func parseAddress(text: String, expected: PeerAddress) {
        #expect(PeerAddress(parsing: text) == expected)
        #expect(PeerAddress(parsing: expected.description) == expected)
    }

    @Test(
        "malformed peer addresses are refused",
        arguments: [
            "", "host", "host:", ":9443", "host:0", "host:65536", "host:port", "fd00::7", "[fd00::7]", "[fd00::7]9443",
        ])
    func refuseAddress(text: String) {
        #expect(PeerAddress(parsing: text) == nil)
    }

    @Test("unusable TLS files are refused with a clear code")
    func unusableFiles() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let identity = try pki.issue("replica-1", by: ca)
            let other = try pki.issue("replica-2", by: ca)
            func load(_ cert: String, _ key: String, _ trust: String) -> PeerTLSError.Code? {
                do {
                    _ = try PeerTLSCredentials(
                        files: PeerTLSFiles(certificatePath: cert, privateKeyPath: key, trustRootsPath: trust),
                        logger: makeTestLogger("peer.tls"))
                    return nil
                } catch {
                    return error.code
                }
            }
            let missing = pki.path("missing.pem")
            let garbage = pki.path("garbage.pem")
            try Data("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".utf8)
                .write(to: URL(fileURLWithPath: garbage))
            #expect(load(identity.certificatePath, identity.keyPath, ca.certificatePath) == nil)
            #expect(load(missing, identity.keyPath, ca.certificatePath) == .unreadableFile)
            #expect(load(garbage, identity.keyPath, ca.certificatePath) == .invalidCertificate)
            #expect(load(identity.certificatePath, garbage, ca.certificatePath) == .invalidPrivateKey)
            #expect(load(identity.certificatePath, other.keyPath, ca.certificatePath) == .keyMismatch)
            #expect(load(identity.certificatePath, identity.keyPath, garbage) == .invalidTrustRoots)
            #expect(load(identity.certificatePath, identity.keyPath, identity.keyPath) == .invalidTrustRoots)
        }
    }

    @Test("delivery errors describe their code and cause")
    func errorDescription() {
        struct Cause: Error {}
        let error = PeerDeliveryError(code: .deadlineExceeded, message: "too slow", cause: Cause())
        #expect(error.description.hasPrefix("deadline_exceeded: too slow (cause: "))
        #expect(PeerDeliveryError.Code.allCases.count == 8)
    }
}
