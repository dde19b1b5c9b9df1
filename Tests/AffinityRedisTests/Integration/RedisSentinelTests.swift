import AffinityRedis
import AffinityTestSupport
import Foundation
import NIOCore
import Testing

/// The client against a real Sentinel deployment on loopback: a master, a replica and three sentinels.
@Suite("Redis Sentinel", .serialized)
struct RedisSentinelTests {
    /// The port of the server a client is connected to (its TLS port when the plain one is off).
    static func connectedPort(_ client: RedisClient) async throws -> Int {
        for name in ["port", "tls-port"] {
            let reply = try await client.send(["CONFIG", "GET", name])
            guard let words = reply.array, words.count == 2, let port = words[1].string.flatMap({ Int($0) }) else {
                throw FixtureError("CONFIG GET \(name) answered \(reply)")
            }
            if port != 0 { return port }
        }
        throw FixtureError("the server has neither a port nor a TLS port")
    }

    @Test(.timeLimit(.minutes(2)))
    func findsTheMasterPastADeadSentinel() async throws {
        try await withRedisSentinelDeployment { deployment in
            var configuration = try deployment.configuration()
            guard case .sentinel(var settings) = configuration.topology else { throw FixtureError("no sentinel") }
            // nothing listens on the first one
            settings.sentinels.insert(RedisEndpoint(host: "127.0.0.1", port: try await freeLoopbackPort()), at: 0)
            configuration.topology = .sentinel(settings)
            let master = try await deployment.currentMaster()
            try await withRedisClient(configuration) { (client: RedisClient) async throws -> Void in
                #expect(try await Self.connectedPort(client) == master)
                #expect(try await client.send(["ROLE"]).array?.first?.string == "master")
                #expect(try await client.send(["SET", "greeting", "hello"]).string == "OK")
            }
        }
    }

    /// kill -9 of the master: the client reconnects to the promoted replica, and what `WAIT` confirmed before
    /// the kill is there.
    @Test(.timeLimit(.minutes(2)))
    func followsTheFailoverAfterTheMasterIsKilled() async throws {
        try await withRedisSentinelDeployment { deployment in
            let oldMaster = try await deployment.currentMaster()
            let client = RedisClient(configuration: try deployment.configuration(), logger: testLogger("sentinel"))
            let events = client.connectionEvents()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { group.cancelAll() }
                try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                #expect(try await Self.connectedPort(client) == oldMaster)
                for index in 0..<100 { _ = try await client.send(["SET", "key-\(index)", "\(index)"]) }
                #expect(try await client.send(["WAIT", "1", "5000"]).integer == 1)

                try deployment.node(port: oldMaster).stop()
                let killed = ContinuousClock.now
                try await waitFor(events, timeout: .seconds(30)) { event in
                    if case .connected(let generation) = event { generation > 1 } else { false }
                }
                let elapsed = ContinuousClock.now - killed
                let newMaster = try await Self.connectedPort(client)
                #expect(newMaster != oldMaster)
                #expect(try await client.send(["ROLE"]).array?.first?.string == "master")
                #expect(try await client.send(["GET", "key-99"]).string == "99")
                #expect(try await client.send(["SET", "after", "failover"]).string == "OK")
                #expect(elapsed < .seconds(15), "reconnected to the new master \(elapsed) after the kill")
                print("sentinel failover: connected to the new master \(elapsed) after kill -9")
            }
        }
    }

    /// A master demoted to a replica behind the sentinels' backs (`REPLICAOF`, and the sentinels re-pointed
    /// with `SENTINEL REMOVE` / `MONITOR`, which announce no `+switch-master`): the next write is answered
    /// `READONLY`, and that alone makes the client drop the connection and ask the sentinels again. Twice:
    /// once through a plain command on the shared connection, once through a confirmed write (`WAIT`), whose
    /// `READONLY` comes on its own connection and must move the shared one too.
    @Test(.timeLimit(.minutes(2)))
    func aMasterDemotedWithoutAnnouncementIsLeftOnReadOnly() async throws {
        try await withRedisSentinelDeployment { deployment in
            try await deployment.waitUntilSentinelsAgree()
            let first = try await deployment.currentMaster()
            guard let second = deployment.nodes.map(\.port).first(where: { $0 != first }) else {
                throw FixtureError("no second data node")
            }
            let client = RedisClient(configuration: try deployment.configuration(), logger: testLogger("sentinel"))
            let events = client.connectionEvents()
            let write = RedisScript(name: "write", source: "return redis.call('SET', KEYS[1], ARGV[1])")
            let replication = RedisReplicationRequirement(replicas: 1, timeout: .seconds(2))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { group.cancelAll() }
                try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                #expect(try await Self.connectedPort(client) == first)
                _ = try await client.evaluate(
                    write, keys: ["before"], arguments: ["1"], replication: replication, confirmingWhen: { _ in true })

                // a plain write on the shared connection
                try await Self.swapRoles(in: deployment, demoting: first, promoting: second)
                let plain = await #expect(throws: RedisError.self) { try await client.send(["SET", "k", "v"]) }
                #expect(plain?.serverErrorPrefix == "READONLY", "\(String(describing: plain))")
                try await waitFor(events, timeout: .seconds(10)) { event in
                    if case .disconnected(_, let reason) = event { reason.message.contains("READONLY") } else { false }
                }
                try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                #expect(try await Self.connectedPort(client) == second)
                #expect(try await client.send(["SET", "k", "v"]).string == "OK")
                #expect(try await client.send(["GET", "before"]).string == "1")

                // a confirmed write, on the connection for confirmed writes
                try await deployment.waitForReplicas(1, of: second)
                try await Self.swapRoles(in: deployment, demoting: second, promoting: first)
                let confirmed = await #expect(throws: RedisError.self) {
                    try await client.evaluate(
                        write, keys: ["after"], arguments: ["2"], replication: replication,
                        confirmingWhen: { _ in true })
                }
                #expect(confirmed?.message.contains("READONLY") == true, "\(String(describing: confirmed))")
                try await waitFor(events, timeout: .seconds(10)) { event in
                    if case .disconnected(_, let reason) = event { reason.message.contains("READONLY") } else { false }
                }
                try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                #expect(try await Self.connectedPort(client) == first)
                try await deployment.waitForReplicas(1, of: first)
                _ = try await client.evaluate(
                    write, keys: ["after"], arguments: ["2"], replication: replication, confirmingWhen: { _ in true })
                #expect(try await client.send(["GET", "k"]).string == "v")
            }
        }
    }

    /// Makes `promoting` the master and `demoting` its replica with `REPLICAOF`, then has every sentinel monitor
    /// the new master afresh (`SENTINEL REMOVE`, `SENTINEL MONITOR`: no failover, so no `+switch-master`).
    static func swapRoles(in deployment: RedisSentinelDeployment, demoting: Int, promoting: Int) async throws {
        let promoted = try await deployment.node(port: promoting).command("REPLICAOF", "NO", "ONE")
        let demoted = try await deployment.node(port: demoting).command(
            "REPLICAOF", "127.0.0.1", String(promoting))
        #expect(promoted == "OK" && demoted == "OK", "REPLICAOF answered \(promoted), \(demoted)")
        for sentinel in deployment.sentinels {
            let removed = try await sentinel.command("SENTINEL", "REMOVE", deployment.masterName)
            let monitored = try await sentinel.command(
                "SENTINEL", "MONITOR", deployment.masterName, "127.0.0.1", String(promoting), "2")
            #expect(removed == "OK" && monitored == "OK", "the sentinel answered \(removed), \(monitored)")
        }
        #expect(try await deployment.currentMaster() == promoting)
    }

    /// The master freezes (SIGSTOP: unreachable for the sentinels, while the client's connection stays open
    /// and idle, so neither an error nor READONLY tells it anything): the `+switch-master` announcement alone
    /// moves the client to the new master.
    @Test(.timeLimit(.minutes(2)))
    func switchMasterAnnouncementMovesAnIdleClient() async throws {
        try await withRedisSentinelDeployment { deployment in
            let oldMaster = try await deployment.currentMaster()
            let client = RedisClient(configuration: try deployment.configuration(), logger: testLogger("sentinel"))
            let events = client.connectionEvents()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer {
                    group.cancelAll()
                    try? deployment.node(port: oldMaster).signal(SIGCONT)
                }
                try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                #expect(try await Self.connectedPort(client) == oldMaster)
                try deployment.node(port: oldMaster).signal(SIGSTOP)
                let newMaster = try await deployment.waitForFailover(from: oldMaster)
                try await waitFor(events, timeout: .seconds(10)) { event in
                    if case .connected(let generation) = event { generation > 1 } else { false }
                }
                #expect(try await Self.connectedPort(client) == newMaster)
                #expect(try await client.send(["SET", "after", "switch"]).string == "OK")
            }
        }
    }

    /// `rediss-sentinel://`: the sentinels and the data nodes listen on TLS ports only (replication and the
    /// sentinels' links over TLS too); the client verifies every certificate against the test CA, and follows
    /// a kill -9 of the master over TLS.
    @Test(.timeLimit(.minutes(2)))
    func speaksTLSToTheSentinelsAndTheDataNodes() async throws {
        try await withTemporaryDirectory { directory in
            let certificates = try TestCertificates.generate(in: directory)
            let files = RedisSentinelDeployment.TLSFiles(
                certificate: certificates.serverCertificate, key: certificates.serverKey,
                authority: certificates.caCertificate)
            try await withRedisSentinelDeployment(tls: files) { deployment in
                #expect(deployment.url.hasPrefix("rediss-sentinel://"))
                var configuration = try deployment.configuration()
                #expect(configuration.tls != nil)
                configuration.tls?.caFile = certificates.caCertificate
                let oldMaster = try await deployment.currentMaster()
                let client = RedisClient(configuration: configuration, logger: testLogger("sentinel-tls"))
                let events = client.connectionEvents()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await client.run() }
                    defer { group.cancelAll() }
                    try await waitFor(events, timeout: .seconds(10)) {
                        if case .connected = $0 { true } else { false }
                    }
                    #expect(try await Self.connectedPort(client) == oldMaster)
                    #expect(try await client.send(["SET", "secure", "yes"]).string == "OK")
                    #expect(try await client.send(["WAIT", "1", "5000"]).integer == 1)
                    try deployment.node(port: oldMaster).stop()
                    try await waitFor(events, timeout: .seconds(30)) { event in
                        if case .connected(let generation) = event { generation > 1 } else { false }
                    }
                    #expect(try await Self.connectedPort(client) != oldMaster)
                    #expect(try await client.send(["GET", "secure"]).string == "yes")
                }
            }
            // a client that does not trust the CA gets a TLS error from the sentinels, not a crash
            try await withRedisSentinelDeployment(tls: files) { deployment in
                let error = try await firstConnectFailure(try deployment.configuration())
                #expect(error.message.contains("TLS"), "\(error)")
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func anUnknownMasterNameIsAClearError() async throws {
        try await withRedisSentinelDeployment { deployment in
            var configuration = try deployment.configuration()
            guard case .sentinel(var settings) = configuration.topology else { throw FixtureError("no sentinel") }
            settings.masterName = "nosuchmaster"
            configuration.topology = .sentinel(settings)
            let error = try await firstConnectFailure(configuration)
            #expect(error.code == .connection)
            #expect(error.message.contains("does not monitor a master named nosuchmaster"), "\(error)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func unreachableSentinelsAreListedInTheError() async throws {
        let ports = [try await freeLoopbackPort(), try await freeLoopbackPort()]
        let configuration = try RedisConfiguration(
            url: "redis-sentinel://127.0.0.1:\(ports[0]),127.0.0.1:\(ports[1])#mymaster")
        let error = try await firstConnectFailure(configuration)
        #expect(error.code == .connection)
        #expect(error.message.contains("no sentinel named the master mymaster"), "\(error)")
        #expect(error.message.contains("127.0.0.1:\(ports[0])") && error.message.contains("127.0.0.1:\(ports[1])"))
    }

    @Test(.timeLimit(.minutes(2)))
    func sentinelPasswordsAreSentAndAWrongOneIsReported() async throws {
        try await withTemporaryDirectory { directory in
            try await withRedisSentinelDeployment(password: "data-secret", sentinelPassword: "sentinel-secret") {
                deployment in
                // the right passwords, the sentinels' from a file
                let file = directory.appendingPathComponent("sentinel-password")
                try "sentinel-secret\n".write(to: file, atomically: true, encoding: .utf8)
                var configuration = try deployment.configuration()
                guard case .sentinel(var settings) = configuration.topology else { throw FixtureError("no sentinel") }
                settings.password = nil
                settings.passwordFile = file.path
                configuration.topology = .sentinel(settings)
                try await withRedisClient(configuration) { (client: RedisClient) async throws -> Void in
                    #expect(try await client.send(["SET", "k", "v"]).string == "OK")
                }
                // a wrong sentinel password
                settings.passwordFile = nil
                settings.password = "wrong"
                configuration.topology = .sentinel(settings)
                let error = try await firstConnectFailure(configuration)
                #expect(error.message.contains("WRONGPASS"), "\(error)")
                #expect(!error.message.contains("wrong"), "no password in the message")
                // an unreadable sentinel password file stops the client at once
                settings.password = nil
                settings.passwordFile = directory.appendingPathComponent("missing").path
                configuration.topology = .sentinel(settings)
                let client = RedisClient(configuration: configuration, logger: testLogger("sentinel"))
                let runError = await #expect(throws: RedisError.self) { try await client.run() }
                #expect(runError?.code == .configuration)
                #expect(runError?.message.contains("Redis Sentinel password file") == true)
            }
        }
    }

    /// Runs a client until its first `.connectFailed` and returns that error.
    private func firstConnectFailure(_ configuration: RedisConfiguration) async throws -> RedisError {
        let client = RedisClient(configuration: configuration, logger: testLogger("sentinel"))
        let events = client.connectionEvents()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            defer { group.cancelAll() }
            let event = try await waitFor(events, timeout: .seconds(20)) {
                if case .connectFailed = $0 { true } else { false }
            }
            guard case .connectFailed(let error) = event else { throw FixtureError("no failure") }
            return error
        }
    }
}
