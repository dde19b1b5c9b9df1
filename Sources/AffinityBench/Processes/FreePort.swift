import NIOCore
import NIOPosix

/// Free loopback ports for the processes the benchmark starts.
enum FreePort {
    /// A free port below the kernel's ephemeral range (32768 and up), so that the thousands of client
    /// connections the benchmark opens cannot take it.
    static func below32768() async throws -> Int {
        for _ in 0..<200 {
            let candidate = Int.random(in: 20_000..<32_000)
            if let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: candidate).get()
            {
                try await channel.close()
                return candidate
            }
        }
        throw BenchError(.processFailed, "no free loopback port in 20000..<32000")
    }
}
