import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension EndToEndTests {
    /// A replica that accepts TCP connections but never answers (frozen, overloaded, shutting down)
    /// holds neither failover nor shutdown of the workers and front-ends that try it.
    @Suite("replica that never answers")
    struct SilentReplicaTests {
        @Test func silentReplicaHoldsNeitherFailoverNorShutdown() async throws {
            try await withSilentListener { silentPort in
                try await withChildProcessSet { set in
                    let gateway = try await TestGatewayProcess.start(in: set)
                    let replica = try await set.start(
                        "affinity-server", ["--host", "127.0.0.1", "--port", "0", "--replica-id", "answering"],
                        name: "replica")
                    let silent = "ws://127.0.0.1:\(silentPort)/v1/ws"
                    let answering = "ws://127.0.0.1:\(replica.port)/v1/ws"
                    let local = ["--host", "127.0.0.1", "--port", "0"]
                    // The silent URL first: the worker gives it up after the handshake timeout (10 s) and
                    // connects to the answering replica.
                    let worker = try await set.start(
                        "affinity-worker", ["--affinity-url", silent, "--affinity-url", answering] + local,
                        name: "worker", environment: gateway.zeebeEnvironment)
                    try await worker.waitForLog("affinity.replica=answering", timeout: .seconds(60))
                    // Only the silent URL: SIGTERM while the attempt hangs stops the front-end at once.
                    let demo = try await set.start(
                        "affinity-demo", ["--affinity-url", silent] + local, name: "demo",
                        environment: gateway.zeebeEnvironment)
                    try await Task.sleep(for: .seconds(1))
                    demo.signal(SIGTERM)
                    let started = ContinuousClock.now
                    let status = await demo.waitForExit(timeout: .seconds(8))
                    #expect(status == 0, "demo still running \(ContinuousClock.now - started) after SIGTERM:\n\(demo.log)")
                }
            }
        }
    }
}

/// A loopback TCP port that completes the handshake (the kernel's accept queue) but whose owner never
/// accepts, reads or answers; closed after `body`.
func withSilentListener<T>(_ body: (Int) async throws -> T) async throws -> T {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw EndToEndFailure("socket() failed") }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(socket, pointer, length) == 0, listen(socket, 64) == 0 else { return -1 }
            return getsockname(socket, pointer, &length)
        }
    }
    guard bound == 0 else { throw EndToEndFailure("bind() or listen() failed") }
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}
