import AffinityTestSupport
import Foundation
import Testing

/// The fixture every Redis test stands on: a server that could not bind its port must fail its start, not
/// be mistaken for whatever other server holds the port (CI once waited 30 s for "sentinels" that were
/// another suite's plain server answering on a reused port).
@Suite("redis-server fixture")
struct RedisServerProcessTests {
    @Test(.timeLimit(.minutes(1)))
    func aServerWhosePortIsTakenFailsItsStart() async throws {
        try await withRedisServer { holder in
            try await withTemporaryDirectory { directory in
                let second = RedisServerProcess(port: holder.port, directory: directory, extraArguments: [], tls: false)
                defer { second.stop() }
                let error = await #expect(throws: FixtureError.self) { try await second.start() }
                #expect(error?.description.contains("exited at start") == true, "\(String(describing: error))")
                #expect(error?.description.contains("Address already in use") == true)
            }
        }
    }

    @Test func portsAreNeverHandedOutTwiceAndLieBelowTheEphemeralRange() async throws {
        var ports = Set<Int>()
        for _ in 0..<200 { ports.insert(try await freeLoopbackPort()) }
        #expect(ports.count == 200)
        #expect(ports.allSatisfy { (20_000..<32_000).contains($0) })
    }
}
