import AffinityRedis
import AffinityTestSupport
import Foundation
import NIOCore
import ServiceLifecycle
import Testing

@Suite("Redis client against redis-server", .serialized)
struct RedisClientTests {
    @Test func sendsCommandsAndKeepsBytesExact() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            try await withRedisClient(server.configuration()) { (client: RedisClient) async throws -> Void in
                let payload = ByteBuffer(bytes: [0x7b, 0, 13, 10, 0xff, 0x7d] + Array("é🙂".utf8))
                var set: RedisCommand = ["SET", "bytes"]
                set.append(payload)
                #expect(try await client.send(set) == .simpleString("OK"))
                #expect(try await client.send(["GET", "bytes"]) == .bulkString(payload))
                #expect(try await client.send(["GET", "missing"]) == .null)
                #expect(try await client.send(["RPUSH", "list", "a", "b"]) == .integer(2))
                #expect(
                    try await client.send(["LRANGE", "list", "0", "-1"])
                        == .array([.bulkString(ByteBuffer(string: "a")), .bulkString(ByteBuffer(string: "b"))]))
                let error = await #expect(throws: RedisError.self) { try await client.send(["INCR", "list"]) }
                #expect(error?.code == .server)
                #expect(error?.serverErrorPrefix == "WRONGTYPE")
                #expect(client.isConnected)
            }
        }
    }

    @Test func pipelinesThousandsOfCommands() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            try await withRedisClient(server.configuration()) { (client: RedisClient) async throws -> Void in
                let commands = (0..<5000).map { _ in RedisCommand(["INCR", "counter"]) }
                let replies = await client.pipeline(commands)
                #expect(replies.count == 5000)
                let values = replies.map { try? $0.get().integer }
                #expect(values == (1...5000).map { Int64($0) })

                // Thousands of concurrent callers share the one connection.
                let sum = try await withThrowingTaskGroup(of: Int64.self) { group in
                    for index in 0..<2000 {
                        group.addTask {
                            let reply = try await client.send(["ECHO", String(index)])
                            return Int64(reply.string ?? "") ?? -1
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(sum == (0..<2000).reduce(0, +))
            }
        }
    }

    @Test func authenticatesWithAPasswordAndReportsAWrongOne() async throws {
        try await withRedisServer(arguments: ["--requirepass", "s3cret"]) {
            (server: RedisServerProcess) async throws -> Void in
            var good = server.configuration()
            good.password = "s3cret"
            try await withRedisClient(good) { (client: RedisClient) async throws -> Void in
                #expect(try await client.send(["PING"]) == .simpleString("PONG"))
            }
            var bad = server.configuration()
            bad.password = "wrong"
            try await withRedisClient(bad, waitForConnection: false) { (client: RedisClient) async throws -> Void in
                let event = try await waitFor(client.connectionEvents(), timeout: .seconds(10)) {
                    if case .connectFailed = $0 { true } else { false }
                }
                guard case .connectFailed(let error) = event else { return }
                #expect(error.code == .server)
                #expect(error.message.contains("WRONGPASS"))
                #expect(!error.message.contains("wrong\""))
                let sendError = await #expect(throws: RedisError.self) { try await client.send(["PING"]) }
                #expect(sendError?.code == .connection)
            }
        }
    }

    @Test func authenticatesAnACLUserFromTheURLAndFromAPasswordFile() async throws {
        try await withRedisServer(arguments: ["--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all"]) {
            (server: RedisServerProcess) async throws -> Void in
            var configuration = try RedisConfiguration(url: "redis://alice:alice-pw@127.0.0.1:\(server.port)")
            configuration.reconnect = server.configuration().reconnect
            try await withRedisClient(configuration) { (client: RedisClient) async throws -> Void in
                #expect(try await client.send(["ACL", "WHOAMI"]).string == "alice")
            }
            try await withTemporaryDirectory { (directory: URL) async throws -> Void in
                let file = directory.appendingPathComponent("password")
                try "alice-pw\n".write(to: file, atomically: true, encoding: .utf8)
                var fromFile = server.configuration()
                fromFile.username = "alice"
                fromFile.passwordFile = file.path
                try await withRedisClient(fromFile) { (client: RedisClient) async throws -> Void in
                    #expect(try await client.send(["ACL", "WHOAMI"]).string == "alice")
                }
            }
        }
    }

    @Test func selectsTheDatabaseFromTheURL() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            var database3 = try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)/3")
            database3.reconnect = server.configuration().reconnect
            try await withRedisClient(database3) { (client: RedisClient) async throws -> Void in
                _ = try await client.send(["SET", "where", "three"])
            }
            try await withRedisClient(server.configuration()) { (client: RedisClient) async throws -> Void in
                #expect(try await client.send(["GET", "where"]) == .null)
                _ = try await client.send(["SELECT", "3"])
                #expect(try await client.send(["GET", "where"]).string == "three")
            }
        }
    }

    @Test func timesOutAgainstAServerThatNeverAnswersAndRecyclesTheConnection() async throws {
        try await withSilentServer { (port: Int) async throws -> Void in
            var configuration = RedisConfiguration(host: "127.0.0.1", port: port)
            configuration.commandTimeout = .milliseconds(300)
            configuration.deadlineCheckInterval = .milliseconds(20)
            configuration.reconnect = .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(100))
            try await withRedisClient(configuration) { (client: RedisClient) async throws -> Void in
                let events = client.connectionEvents()
                let started = ContinuousClock.now
                async let first = outcome { try await client.send(["PING"]) }
                async let second = outcome { try await client.send(["PING"], timeout: .seconds(30)) }
                let (firstResult, secondResult) = await (first, second)
                #expect(ContinuousClock.now - started < .seconds(3))
                guard case .failure(let timeout) = firstResult, case .failure(let recycled) = secondResult else {
                    Issue.record("both commands must fail")
                    return
                }
                #expect(timeout.code == .timeout)
                #expect(recycled.code == .connection)
                try await waitFor(events, timeout: .seconds(5)) {
                    if case .disconnected(_, let reason) = $0 { reason.code == .timeout } else { false }
                }
                try await waitFor(events, timeout: .seconds(5)) {
                    if case .connected(let generation) = $0 { generation >= 2 } else { false }
                }
            }
        }
    }

    @Test func timesOutOnASlowRedisAndWorksAgainAfterwards() async throws {
        try await withRedisServer(arguments: ["--enable-debug-command", "yes"]) {
            (server: RedisServerProcess) async throws -> Void in
            var configuration = server.configuration()
            configuration.deadlineCheckInterval = .milliseconds(20)
            try await withRedisClient(configuration) { (client: RedisClient) async throws -> Void in
                let events = client.connectionEvents()
                let error = await #expect(throws: RedisError.self) {
                    try await client.send(["DEBUG", "SLEEP", "1"], timeout: .milliseconds(200))
                }
                #expect(error?.code == .timeout)
                try await waitFor(events, timeout: .seconds(10)) {
                    if case .connected(let generation) = $0 { generation >= 2 } else { false }
                }
                #expect(try await client.send(["PING"]) == .simpleString("PONG"))
            }
        }
    }

    @Test func reconnectsAfterRedisIsKilledAndRestarted() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            try await withRedisClient(server.configuration()) { (client: RedisClient) async throws -> Void in
                let events = client.connectionEvents()
                _ = try await client.send(["SET", "before", "1"])
                server.stop()
                try await waitFor(events, timeout: .seconds(5)) {
                    if case .disconnected = $0 { true } else { false }
                }
                let started = ContinuousClock.now
                let error = await #expect(throws: RedisError.self) { try await client.send(["PING"]) }
                #expect(error?.code == .connection)
                #expect(ContinuousClock.now - started < .milliseconds(500), "no waiting while Redis is down")
                try await waitFor(events, timeout: .seconds(5)) {
                    if case .connectFailed = $0 { true } else { false }
                }
                try await server.start()
                try await waitFor(events, timeout: .seconds(10)) {
                    if case .connected(let generation) = $0 { generation >= 2 } else { false }
                }
                #expect(try await client.send(["GET", "before"]) == .null, "a restart without persistence is empty")
                #expect(try await client.send(["PING"]) == .simpleString("PONG"))
            }
        }
    }

    @Test func reloadsAScriptAfterScriptFlush() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            try await withRedisClient(server.configuration()) { (client: RedisClient) async throws -> Void in
                let script = RedisScript(name: "test.echo", source: "return {KEYS[1], ARGV[1]}")
                let expected = RedisReply.array([
                    .bulkString(ByteBuffer(string: "k")), .bulkString(ByteBuffer(string: "v")),
                ])
                #expect(try await client.evaluate(script, keys: ["k"], arguments: ["v"]) == expected)
                #expect(try await client.evaluate(script, keys: ["k"], arguments: ["v"]) == expected)
                _ = try await client.send(["SCRIPT", "FLUSH"])
                #expect(try await client.evaluate(script, keys: ["k"], arguments: ["v"]) == expected)
                _ = try await client.send(["SCRIPT", "FLUSH"])
                let results = await client.evaluateAll(
                    script, calls: (0..<50).map { RedisScriptCall(keys: ["k\($0)"], arguments: ["v"]) })
                #expect(results.allSatisfy { (try? $0.get())?.array?.count == 2 })
                let stats = try await client.send(["INFO", "commandstats"]).string ?? ""
                let loads = stats.split(separator: "\r\n").first { $0.hasPrefix("cmdstat_script|load:") }
                #expect(loads?.hasPrefix("cmdstat_script|load:calls=3,") == true, "one load per flush: \(loads ?? "")")
                let failing = RedisScript(name: "test.fail", source: "return redis.error_reply('NOPE custom')")
                let error = await #expect(throws: RedisError.self) {
                    try await client.evaluate(failing, keys: [], arguments: [])
                }
                #expect(error?.serverErrorPrefix == "NOPE")
            }
        }
    }

    @Test func failsFastWhenRedisIsUnreachable() async throws {
        let port = try await freeLoopbackPort()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        configuration.reconnect = .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(50))
        try await withRedisClient(configuration, waitForConnection: false) {
            (client: RedisClient) async throws -> Void in
            let event = try await waitFor(client.connectionEvents(), timeout: .seconds(5)) {
                if case .connectFailed = $0 { true } else { false }
            }
            if case .connectFailed(let error) = event { #expect(error.code == .connection) }
            let error = await #expect(throws: RedisError.self) { try await client.send(["PING"]) }
            #expect(error?.code == .connection)
        }
    }
}

/// The result of `body`, with its error as a ``RedisError``.
func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, RedisError> {
    do {
        return .success(try await body())
    } catch let error as RedisError {
        return .failure(error)
    } catch {
        return .failure(RedisError(code: .protocol, message: "not a RedisError: \(error)"))
    }
}

@Suite("Redis client as a Service", .serialized)
struct RedisClientServiceTests {
    @Test func gracefulShutdownAnswersCommandsInFlightThenStops() async throws {
        try await withRedisServer { (server: RedisServerProcess) async throws -> Void in
            let client = RedisClient(configuration: server.configuration(), logger: testLogger("service"))
            let group = ServiceGroup(services: [client], logger: testLogger("group"))
            let events = client.connectionEvents()
            try await withRedisClient(server.configuration()) { (observer: RedisClient) async throws -> Void in
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                    async let blocked = client.send(["BLPOP", "queue", "10"], timeout: .seconds(15))
                    // Wait until Redis is really blocked in that BLPOP, then shut down while it is in flight.
                    while !(try await observer.send(["CLIENT", "LIST"]).string ?? "").contains("cmd=blpop") {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    await group.triggerGracefulShutdown()
                    _ = try await observer.send(["RPUSH", "queue", "item"])
                    #expect(
                        try await blocked
                            == .array([
                                .bulkString(ByteBuffer(string: "queue")), .bulkString(ByteBuffer(string: "item")),
                            ]))
                    try await tasks.waitForAll()
                }
            }
            let error = await #expect(throws: RedisError.self) { try await client.send(["PING"]) }
            #expect(error?.code == .connection)
            #expect(!client.isConnected)
        }
    }
}

@Suite("Redis client settings checked at start")
struct RedisClientSettingsTests {
    @Test func anACLUserWithoutAPasswordFailsRun() async throws {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: 1)
        configuration.username = "alice"
        let client = RedisClient(configuration: configuration, logger: testLogger("settings"))
        let error = await #expect(throws: RedisError.self) { try await client.run() }
        #expect(error?.code == .configuration)
    }

    @Test func anUnreadablePasswordFileFailsRun() async throws {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: 1)
        configuration.passwordFile = "/nonexistent/redis-password"
        let client = RedisClient(configuration: configuration, logger: testLogger("settings"))
        let error = await #expect(throws: RedisError.self) { try await client.run() }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains("/nonexistent/redis-password") == true)
    }
}
