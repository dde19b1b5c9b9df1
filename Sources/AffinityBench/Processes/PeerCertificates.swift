import Foundation

/// The cluster CA and one replica certificate for the peer channel's mutual TLS, made with the `openssl`
/// command line in the benchmark's temporary folder.
public struct PeerCertificates: Sendable {
    /// The CA bundle (`--peer-tls-ca`).
    public let authorityPath: String
    /// The replica certificate (`--peer-tls-cert`), valid for server and client authentication.
    public let certificatePath: String
    /// Its private key (`--peer-tls-key`).
    public let keyPath: String

    /// Creates an EC P-256 CA and issues one leaf certificate from it (shared by every replica: the peer
    /// channel verifies the chain, not the name).
    public static func make(in directory: URL) throws(BenchError) -> PeerCertificates {
        let openssl = try ExecutableLocator.onPath("openssl", package: "openssl")
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let authority = path("bench-ca.crt")
        let authorityKey = path("bench-ca.key")
        let certificate = path("replica.crt")
        let key = path("replica.key")
        let request = path("replica.csr")
        let extensions = path("replica.ext")
        try run(
            openssl,
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", authorityKey, "-out", authority, "-days", "2", "-subj", "/O=affinity-bench/CN=bench-ca",
                "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
        do {
            try """
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth,clientAuth
            subjectAltName=DNS:affinity-peer,DNS:localhost,IP:127.0.0.1

            """.write(toFile: extensions, atomically: true, encoding: .utf8)
        } catch {
            throw BenchError(.processFailed, "cannot write \(extensions)", cause: ErrorText("\(error)"))
        }
        try run(
            openssl,
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", request, "-subj", "/O=affinity-bench/CN=replica",
            ])
        try run(
            openssl,
            [
                "x509", "-req", "-in", request, "-CA", authority, "-CAkey", authorityKey,
                "-set_serial", "\(UInt32.random(in: 1...UInt32.max))", "-out", certificate, "-days", "2",
                "-extfile", extensions,
            ])
        return PeerCertificates(authorityPath: authority, certificatePath: certificate, keyPath: key)
    }

    private static func run(_ openssl: String, _ arguments: [String]) throws(BenchError) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: openssl)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw BenchError(.processFailed, "cannot run openssl", cause: ErrorText("\(error)"))
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError(
                .processFailed,
                "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self))"
            )
        }
    }
}
