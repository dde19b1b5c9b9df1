import AffinityTestSupport
import Foundation
import Testing

extension ClusterTests {
    /// Bad Redis topology settings stop `affinity-server` at start with one clear line (exit 2).
    @Suite("Redis topology settings")
    struct SentinelSettingsTests {
        @Test(arguments: [
            (["--redis-url", "redis-sentinel://127.0.0.1:1/0"], "needs the master name after #"),
            (
                ["--redis-url", "redis-cluster://127.0.0.1:1", "--redis-sentinel-password-file", "PASSWORD"],
                "needs a redis-sentinel://"
            ),
            (
                ["--redis-url", "redis://127.0.0.1:1", "--redis-sentinel-password-file", "PASSWORD"],
                "needs a redis-sentinel://"
            ),
            (
                ["--redis-url", "redis-sentinel://127.0.0.1:1#m", "--redis-sentinel-password-file", "/nonexistent"],
                "cannot read"
            ),
            (["--redis-url", "redis-sentinel://127.0.0.1:1,#m"], "a host is missing"),
        ])
        func badTopologySettingsStopWithOneLine(arguments: [String], expected: String) async throws {
            try await withTemporaryDirectory { directory in
                let password = directory.appendingPathComponent("password")
                try "secret\n".write(to: password, atomically: true, encoding: .utf8)
                let (status, text) = try await runServerExpectingItToStop(
                    ["--port", "0"] + arguments.map { $0 == "PASSWORD" ? password.path : $0 }, in: directory)
                #expect(status == 2, "\(text)")
                #expect(text.split(separator: "\n").count == 1, "\(text)")
                #expect(text.contains(expected), "\(text)")
            }
        }
    }
}
