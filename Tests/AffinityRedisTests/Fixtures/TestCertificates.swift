import AffinityTestSupport
import Foundation

/// Certificates generated with `openssl` for one test: a CA, a server certificate for 127.0.0.1/localhost
/// signed by it, a client certificate signed by it, and an unrelated CA with its own server certificate.
struct TestCertificates {
    let directory: URL
    var caCertificate: String { path("ca.crt") }
    var serverCertificate: String { path("server.crt") }
    var serverKey: String { path("server.key") }
    var clientCertificate: String { path("client.crt") }
    var clientKey: String { path("client.key") }
    /// A server certificate from the CA that names only `DNS:redis.test` (no IP entry).
    var namedServerCertificate: String { path("named-server.crt") }
    var namedServerKey: String { path("named-server.key") }
    var otherCACertificate: String { path("other-ca.crt") }
    var otherServerCertificate: String { path("other-server.crt") }
    var otherServerKey: String { path("other-server.key") }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Generates every file into `directory`.
    static func generate(in directory: URL) throws -> TestCertificates {
        let certificates = TestCertificates(directory: directory)
        let openssl = try RedisServerProcess.findExecutable("openssl")
        func run(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = openssl
            process.arguments = arguments
            process.currentDirectoryURL = directory
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw FixtureError("openssl \(arguments.joined(separator: " ")) failed")
            }
        }
        let extensions = directory.appendingPathComponent("server.ext")
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".write(
            to: extensions, atomically: true, encoding: .utf8)
        try "subjectAltName=DNS:redis.test\nextendedKeyUsage=serverAuth\n".write(
            to: directory.appendingPathComponent("named.ext"), atomically: true, encoding: .utf8)
        let clientExtensions = directory.appendingPathComponent("client.ext")
        try "extendedKeyUsage=clientAuth\n".write(to: clientExtensions, atomically: true, encoding: .utf8)
        for ca in ["ca", "other-ca"] {
            try run([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=affinity test \(ca)",
                "-keyout", "\(ca).key", "-out", "\(ca).crt",
            ])
        }
        for (name, ca, ext) in [
            ("server", "ca", "server.ext"), ("client", "ca", "client.ext"), ("other-server", "other-ca", "server.ext"),
            ("named-server", "ca", "named.ext"),
        ] {
            try run([
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)", "-keyout", "\(name).key", "-out",
                "\(name).csr",
            ])
            try run([
                "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).crt", "-CAkey", "\(ca).key", "-CAcreateserial",
                "-days", "2", "-extfile", ext, "-out", "\(name).crt",
            ])
        }
        return certificates
    }
}
