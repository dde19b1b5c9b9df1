import AffinityRedis
import AffinityTestSupport
import Foundation
import NIOCore
import Testing

@Suite("Redis over TLS (rediss://)", .serialized)
struct RedisTLSTests {
    /// Runs `body` with certificates and a TLS-only redis-server using the given server certificate.
    private func withTLSRedis(
        requireClientCertificates: Bool = false,
        serverCertificate: KeyPath<TestCertificates, String> = \.serverCertificate,
        serverKey: KeyPath<TestCertificates, String> = \.serverKey,
        _ body: (RedisServerProcess, TestCertificates) async throws -> Void
    ) async throws {
        try await withTemporaryDirectory { (directory: URL) async throws -> Void in
            let certificates = try TestCertificates.generate(in: directory)
            let arguments = [
                "--tls-cert-file", certificates[keyPath: serverCertificate],
                "--tls-key-file", certificates[keyPath: serverKey],
                "--tls-ca-cert-file", certificates.caCertificate,
                "--tls-auth-clients", requireClientCertificates ? "yes" : "no",
            ]
            try await withRedisServer(arguments: arguments, tls: true, directory: directory) {
                (server: RedisServerProcess) async throws -> Void in
                try await body(server, certificates)
            }
        }
    }

    private func tlsConfiguration(
        _ server: RedisServerProcess, _ tls: RedisConfiguration.TLS
    ) throws
        -> RedisConfiguration
    {
        var configuration = try RedisConfiguration(url: "rediss://127.0.0.1:\(server.port)/1")
        configuration.tls = tls
        configuration.reconnect = server.configuration().reconnect
        return configuration
    }

    @Test func connectsWithTheClusterCA() async throws {
        try await withTLSRedis { server, certificates in
            let configuration = try tlsConfiguration(server, .init(caFile: certificates.caCertificate))
            try await withRedisClient(configuration) { (client: RedisClient) async throws -> Void in
                #expect(try await client.send(["SET", "secure", "yes"]) == .simpleString("OK"))
                #expect(try await client.send(["GET", "secure"]).string == "yes")
                let pipelined = await client.pipeline((0..<1000).map { _ in ["INCR", "n"] })
                #expect((try? pipelined.last?.get())?.integer == 1000)
            }
        }
    }

    @Test func sendsSNIAndChecksTheHostName() async throws {
        // The certificate names only DNS:redis.test, so the connection to 127.0.0.1 verifies only by that name.
        try await withTLSRedis(serverCertificate: \.namedServerCertificate, serverKey: \.namedServerKey) {
            server, certificates in
            let good = try tlsConfiguration(server, .init(caFile: certificates.caCertificate, serverName: "redis.test"))
            try await withRedisClient(good) { (client: RedisClient) async throws -> Void in
                #expect(try await client.send(["PING"]) == .simpleString("PONG"))
            }
            try await expectTLSFailure(try tlsConfiguration(server, .init(caFile: certificates.caCertificate)))
            let wrongName = try tlsConfiguration(
                server, .init(caFile: certificates.caCertificate, serverName: "redis.example.com"))
            try await expectTLSFailure(wrongName)
        }
    }

    @Test func refusesAServerCertificateFromAnotherCA() async throws {
        try await withTLSRedis(serverCertificate: \.otherServerCertificate, serverKey: \.otherServerKey) {
            server, certificates in
            try await expectTLSFailure(try tlsConfiguration(server, .init(caFile: certificates.caCertificate)))
        }
    }

    @Test func refusesAnUntrustedServerWithTheSystemRoots() async throws {
        try await withTLSRedis { server, _ in
            try await expectTLSFailure(try tlsConfiguration(server, .init()))
        }
    }

    /// Without `AUTH` or `SELECT` there is no Redis handshake to wait for: the connection must still not count
    /// as ready before its TLS handshake. Before, it did: the client reported `.connected` to a server whose
    /// certificate it was about to refuse, and a command sent at once failed with the channel's closing
    /// instead of the TLS error (CI saw "no sentinel named the master ...: the connection ... is closed").
    @Test(.timeLimit(.minutes(1)))
    func aConnectionWithoutAuthIsNotReadyBeforeItsTLSHandshake() async throws {
        try await withTLSRedis { server, _ in
            // database 0 and no password: no SELECT, no AUTH
            var configuration = try RedisConfiguration(url: "rediss://127.0.0.1:\(server.port)")
            configuration.tls = .init()
            configuration.reconnect = server.configuration().reconnect
            try await withRedisClient(configuration, waitForConnection: false) {
                (client: RedisClient) async throws -> Void in
                let events = client.connectionEvents()
                var seen: [String] = []
                for await event in events {
                    switch event {
                    case .connected: seen.append("connected")
                    case .disconnected: seen.append("disconnected")
                    case .connectFailed(let error): seen.append("failed \(error.code)")
                    }
                    if seen.count == 3 { break }
                }
                #expect(seen == ["failed tls", "failed tls", "failed tls"], "\(seen)")
            }
        }
    }

    @Test func presentsAClientCertificateWhenTheServerRequiresOne() async throws {
        try await withTLSRedis(requireClientCertificates: true) { server, certificates in
            let withCertificate = try tlsConfiguration(
                server,
                .init(
                    caFile: certificates.caCertificate, certificateFile: certificates.clientCertificate,
                    keyFile: certificates.clientKey))
            try await withRedisClient(withCertificate) { (client: RedisClient) async throws -> Void in
                #expect(try await client.send(["PING"]) == .simpleString("PONG"))
            }
            let without = try tlsConfiguration(server, .init(caFile: certificates.caCertificate))
            try await withRedisClient(without, waitForConnection: false) { (client: RedisClient) async throws -> Void in
                try await waitFor(client.connectionEvents(), timeout: .seconds(10)) {
                    if case .connectFailed = $0 { true } else { false }
                }
                #expect(!client.isConnected)
            }
        }
    }

    @Test func failsRunWithUnreadableTLSFiles() async throws {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: 1)
        configuration.tls = .init(caFile: "/nonexistent/ca.crt")
        let client = RedisClient(configuration: configuration, logger: testLogger("tls"))
        let error = await #expect(throws: RedisError.self) { try await client.run() }
        #expect(error?.code == .tls)
    }

    private func expectTLSFailure(_ configuration: RedisConfiguration) async throws {
        try await withRedisClient(configuration, waitForConnection: false) {
            (client: RedisClient) async throws -> Void in
            let event = try await waitFor(client.connectionEvents(), timeout: .seconds(10)) {
                if case .connectFailed = $0 { true } else { false }
            }
            guard case .connectFailed(let error) = event else { return }
            #expect(error.code == .tls, "\(error)")
            #expect(!client.isConnected)
        }
    }
}
