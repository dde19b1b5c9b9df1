import AffinityProtocol
import AffinityServer
import Foundation
import MetricsTestKit
import Testing

@testable import AffinityClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A replica that accepts TCP connections but never answers the upgrade (frozen, overloaded, late in its
/// shutdown: the kernel still completes handshakes on a listening socket nobody reads).
@Suite(.timeLimit(.minutes(2))) struct SilentReplicaTests {
    @Test func failoverMovesPastAReplicaThatNeverAnswersTheUpgrade() async throws {
        try await withSilentListener { silentPort in
            try await withServer(replicaID: "answering") { url in
                var configuration = testConnection([webSocketURL(port: silentPort), url])
                configuration.handshakeTimeout = .seconds(1)
                let publisher = OutcomePublisher(configuration: configuration, logger: quietLogger)
                let started = ContinuousClock.now
                try await withRunning(publisher) {
                    try await eventually("moved past the silent replica", timeout: .seconds(10)) {
                        publisher.connectedReplica == "answering"
                    }
                    let status = try await publisher.publish(outcome("after-silence", key(77), "{}"), timeout: .seconds(5))
                    #expect(status == .parked)
                }
                #expect(ContinuousClock.now - started < .seconds(8))
            }
        }
    }

    @Test func stoppingDuringAnUpgradeThatNeverAnswersReturnsAtOnce() async throws {
        try await withSilentListener { silentPort in
            var configuration = testConnection([webSocketURL(port: silentPort)])
            configuration.handshakeTimeout = .seconds(60)
            let session = AffinitySession(configuration: configuration, logger: quietLogger)
            let publisher = OutcomePublisher(configuration: configuration, logger: quietLogger)
            try await withRunning(session) {
                try await withRunning(publisher) {
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(!publisher.isConnected)
                    #expect(session.connectedReplica == nil)
                }
            }
            // withRunning cancels and waits: reaching this line within the time limit is the proof; measure it
            let stopped = ContinuousClock.now
            try await withRunning(session) { try await Task.sleep(for: .milliseconds(300)) }
            #expect(ContinuousClock.now - stopped < .seconds(5), "the session ignored cancellation during the upgrade")
        }
    }

    @Test func pingsOfTheServerAreAnsweredSoTheConnectionStays() async throws {
        // the server drops a peer that misses a pong; at 500 ms it pings about 6 times here
        try await withServer(replicaID: "pinging", { $0.pingInterval = .milliseconds(500) }) { url in
            var configuration = testConnection([url])
            configuration.pingInterval = .milliseconds(700)
            let metrics = TestMetrics()
            let session = AffinitySession(
                configuration: configuration, clientID: "pinged", logger: quietLogger, metricsFactory: metrics)
            try await withRunning(session) {
                try await eventually("connected") { session.connectedReplica == "pinging" }
                let instance = key(4242)
                async let received = session.awaitOutcome(processInstanceKey: instance, timeout: .seconds(10))
                try await eventually("subscribed") { session.pendingState.confirmedKeys == 1 }
                try await Task.sleep(for: .milliseconds(3200))
                let publisher = OutcomePublisher(configuration: testConnection([url]), logger: quietLogger)
                let status = try await withRunning(publisher) {
                    try await eventually("publisher connected") { publisher.isConnected }
                    return try await publisher.publish(outcome("after-pings", instance, "{}"), timeout: .seconds(5))
                }
                // delivered live: the session kept its first connection and subscription through the pings
                #expect(status == .delivered)
                #expect(try await received.id == "after-pings")
                let disconnects = try metrics.expectCounter("affinity_client_disconnects_total")
                #expect(disconnects.totalValue == 0, "the session lost its connection during the pings")
            }
        }
    }
}

@Suite struct WebSocketEndpointTests {
    @Test func parsesHostPortPathAndScheme() throws {
        #expect(
            try WebSocketTransport.endpoint(of: "ws://127.0.0.1:8080/v1/ws")
                == .init(host: "127.0.0.1", port: 8080, path: "/v1/ws", secure: false))
        #expect(
            try WebSocketTransport.endpoint(of: "wss://affinity.example/v1/ws?x=1")
                == .init(host: "affinity.example", port: 443, path: "/v1/ws?x=1", secure: true))
        #expect(
            try WebSocketTransport.endpoint(of: "ws://[::1]/v1/ws")
                == .init(host: "::1", port: 80, path: "/v1/ws", secure: false))
        #expect(try WebSocketTransport.endpoint(of: "ws://h").path == "/")
    }

    @Test(arguments: ["http://127.0.0.1/v1/ws", "not a url", "ws:///v1/ws", "", "ftp://h/"])
    func rejectsWhatIsNotAWebSocketURL(_ url: String) {
        #expect(throws: AffinityClientError.self) { try WebSocketTransport.endpoint(of: url) }
    }
}

/// A loopback TCP port whose connections complete (the kernel's accept queue) but are never accepted, read
/// or answered; closed after `body`.
func withSilentListener<T>(_ body: (Int) async throws -> T) async throws -> T {
    #if canImport(Glibc)
    let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let socketFD = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard socketFD >= 0 else { throw TestFailure("socket() failed") }
    defer { close(socketFD) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(socketFD, pointer, length) == 0, listen(socketFD, 64) == 0 else { return -1 }
            return getsockname(socketFD, pointer, &length)
        }
    }
    guard bound == 0 else { throw TestFailure("bind() or listen() failed") }
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}
