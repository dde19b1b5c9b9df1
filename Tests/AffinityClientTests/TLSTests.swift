import AffinityClient
import AffinityProtocol
import AffinityTestSupport
import Foundation
import NIOCore
import NIOSSL
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `wss://`: the session and publisher reach a replica through a TLS-terminating HAProxy with a
/// certificate generated at test time, trusting it through the passed `TLSConfiguration`.
@Suite(.timeLimit(.minutes(2))) struct TLSTests {
    @Test func sessionAndPublisherOverWSS() async throws {
        try await withTemporaryDirectory { directory in
            let certificate = directory.appendingPathComponent("cert.pem")
            let key = directory.appendingPathComponent("key.pem")
            try run(
                "openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=affinity.test",
                    "-addext", "subjectAltName=DNS:affinity.test", "-keyout", key.path, "-out", certificate.path,
                ])
            let bundle = directory.appendingPathComponent("bundle.pem")
            try (try Data(contentsOf: certificate) + Data(contentsOf: key)).write(to: bundle)
            try await withServer { url in
                let backendPort = Int(url.split(separator: ":").last!.split(separator: "/").first!)!
                let frontendPort = try unusedPort()
                let configuration = directory.appendingPathComponent("haproxy.cfg")
                try Data(
                    """
                    global
                        maxconn 100
                    defaults
                        mode tcp
                        timeout connect 5s
                        timeout client 60s
                        timeout server 60s
                    frontend tls
                        bind 127.0.0.1:\(frontendPort) ssl crt \(bundle.path)
                        default_backend replica
                    backend replica
                        server r1 127.0.0.1:\(backendPort)

                    """.utf8
                ).write(to: configuration)
                let proxy = Process()
                proxy.executableURL = URL(fileURLWithPath: try locate("haproxy"))
                proxy.arguments = ["-f", configuration.path, "-db"]
                proxy.standardOutput = FileHandle.nullDevice
                proxy.standardError = FileHandle.nullDevice
                try proxy.run()
                defer {
                    kill(proxy.processIdentifier, SIGKILL)
                    proxy.waitUntilExit()
                }
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate.path))
                // HAProxy in TCP mode does not answer close_notify: do not wait the default 5 s for it
                tls.shutdownTimeout = .milliseconds(100)
                var connection = testConnection(["wss://127.0.0.1:\(frontendPort)/v1/ws"])
                connection.tls = tls
                connection.tlsServerName = "affinity.test"  // an IP address cannot be sent as SNI
                let session = AffinitySession(configuration: connection, logger: quietLogger)
                let publisher = OutcomePublisher(configuration: connection, logger: quietLogger)
                try await withRunning(session) {
                    try await withRunning(publisher) {
                        try await eventually("session connected over TLS") { session.connectedReplica != nil }
                        try await eventually("publisher connected over TLS") { publisher.isConnected }
                        let instance = AffinityClientTests.key(4040)
                        async let received = session.awaitOutcome(processInstanceKey: instance, timeout: .seconds(10))
                        try await eventually("subscribed") { session.pendingState.confirmedKeys == 1 }
                        let status = try await publisher.publish(
                            outcome("tls-1", instance, #"{"secure":true}"#), timeout: .seconds(10))
                        #expect(status == .delivered)
                        #expect(try await received.variablesJSON == #"{"secure":true}"#)
                    }
                }
                // without the trust root the handshake fails: no connection
                var untrustingConnection = testConnection(["wss://127.0.0.1:\(frontendPort)/v1/ws"])
                untrustingConnection.tlsServerName = "affinity.test"
                let untrusting = OutcomePublisher(configuration: untrustingConnection, logger: quietLogger)
                try await withRunning(untrusting) {
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(!untrusting.isConnected)
                }
            }
        }
    }
}

/// The path of a tool on PATH (or in /usr/sbin); fails the test with a clear message when missing.
func locate(_ tool: String) throws -> String {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestFailure("\(tool) is not installed (apt-get install \(tool))")
}

func run(_ tool: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try locate(tool))
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw TestFailure("\(tool) failed with \(process.terminationStatus)") }
}
