import AffinityTestSupport
import Foundation

/// The certificates of one Redis TLS test, issued with ``TestPKI``: a CA, a server certificate for
/// 127.0.0.1/localhost signed by it, a client certificate signed by it, a server certificate that names only
/// `redis.test`, and an unrelated CA with its own server certificate.
struct TestCertificates {
    let caCertificate: String
    let serverCertificate: String
    let serverKey: String
    let clientCertificate: String
    let clientKey: String
    /// A server certificate from the CA that names only `DNS:redis.test` (no IP entry).
    let namedServerCertificate: String
    let namedServerKey: String
    let otherServerCertificate: String
    let otherServerKey: String

    /// Generates every file into `directory`.
    static func generate(in directory: URL) throws -> TestCertificates {
        let pki = TestPKI(directory: directory)
        let authority = try pki.makeAuthority("redis")
        let otherAuthority = try pki.makeAuthority("other")
        let server = try pki.issue("server", by: authority, names: ["localhost"], extendedKeyUsage: "serverAuth")
        let client = try pki.issue("client", by: authority, names: [], addresses: [], extendedKeyUsage: "clientAuth")
        let named = try pki.issue(
            "named-server", by: authority, names: ["redis.test"], addresses: [], extendedKeyUsage: "serverAuth")
        let other = try pki.issue(
            "other-server", by: otherAuthority, names: ["localhost"], extendedKeyUsage: "serverAuth")
        return TestCertificates(
            caCertificate: authority.certificatePath, serverCertificate: server.certificatePath,
            serverKey: server.keyPath, clientCertificate: client.certificatePath, clientKey: client.keyPath,
            namedServerCertificate: named.certificatePath, namedServerKey: named.keyPath,
            otherServerCertificate: other.certificatePath,
            otherServerKey: other.keyPath)
    }
}
