import AffinityRedis
import AffinityTestSupport
import Foundation
import Synchronization
import Testing

/// The client against a real Redis Cluster on loopback: three masters with one replica each.
@Suite("Redis Cluster", .serialized)
struct RedisClusterTests {
    /// A key whose slot is `slot` (`{tag}suffix`, the tag found by search).
    static func key(inSlot slot: Int, suffix: String = "") -> String {
        var index = 0
        while RedisClusterSlot.slot(forKey: "t\(index)") != slot { index += 1 }
        return "{t\(index)}\(suffix)"
    }

    /// How often the node on `port` answered an error reply starting with `prefix` (`INFO errorstats`).
    static func errorCount(_ prefix: String, on node: RedisServerProcess) async throws -> Int {
        let stats = try await node.command("INFO", "errorstats")
        guard
            let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("errorstat_\(prefix):") }),
            let count = line.split(separator: "=").dropFirst().first?.split(separator: ",").first.flatMap({ Int($0) })
        else { return 0 }
        return count
    }

    static let setAndEcho = RedisScript(
        name: "set-and-echo", source: "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]")

    @Test(.timeLimit(.minutes(2)))
    func keysInEverySlotRangeReachTheirMasterDirectly() async throws {
        try await withRedisClusterDeployment { deployment in
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let masters = try await deployment.masters()
                #expect(masters.count == 3)
                let keys = (0..<3000).map { "key-\($0)" }
                let replies = await client.pipeline(keys.map { ["SET", $0, "value-\($0)"] })
                #expect(replies.filter { (try? $0.get())?.string == "OK" }.count == keys.count)
                // both ends of every slot range, one command at a time
                var edgeKeys: [Int: Set<String>] = [:]
                for master in masters {
                    for range in master.slots {
                        for slot in [range.lowerBound, range.upperBound] {
                            edgeKeys[master.port, default: []].insert(Self.key(inSlot: slot, suffix: ":edge"))
                            let key = Self.key(inSlot: slot, suffix: ":edge")
                            #expect(try await client.send(["SET", key, "\(slot)"]).string == "OK")
                            #expect(try await client.send(["GET", key]).string == "\(slot)")
                            // redis-cli without -c answers MOVED for a key of another master
                            #expect(try await deployment.node(port: master.port).command("GET", key) == "\(slot)")
                        }
                    }
                }
                for master in masters {
                    let node = try deployment.node(port: master.port)
                    let expected = keys.filter { master.serves(RedisClusterSlot.slot(forKey: $0)) }.count
                    #expect(expected > 500)
                    #expect(Int(try await node.command("DBSIZE")) == expected + (edgeKeys[master.port]?.count ?? 0))
                    #expect(try await Self.errorCount("MOVED", on: node) == 0, "every command went to its master")
                }
                let values = await client.pipeline(keys.map { ["GET", $0] })
                #expect(values.map { (try? $0.get())?.string } == keys.map { "value-\($0)" })
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aScriptOverTwoSlotsFailsAndOneOverAHashTagWorks() async throws {
        try await withRedisClusterDeployment { deployment in
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let pair = RedisScript(
                    name: "pair",
                    source: "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[1]) "
                        + "return redis.call('GET', KEYS[2])")
                #expect(RedisClusterSlot.slot(forKey: "a") != RedisClusterSlot.slot(forKey: "b"))
                let error = await #expect(throws: RedisError.self) {
                    try await client.evaluate(pair, keys: ["a", "b"], arguments: ["1"])
                }
                #expect(error?.code == .server)
                #expect(error?.serverErrorPrefix == "CROSSSLOT", "\(String(describing: error))")
                #expect(
                    try await client.evaluate(pair, keys: ["{order-7}:a", "{order-7}:b"], arguments: ["2"]).string
                        == "2")
                let results = await client.evaluateAll(
                    pair,
                    calls: [
                        RedisScriptCall(keys: ["{x}:a", "{x}:b"], arguments: ["3"]),
                        RedisScriptCall(keys: ["c", "d"], arguments: ["4"]),
                        RedisScriptCall(keys: ["{y}:a", "{y}:b"], arguments: ["5"]),
                    ])
                #expect((try? results[0].get())?.string == "3")
                guard case .failure(let crossSlot) = results[1] else {
                    Issue.record("a call over two slots succeeded")
                    return
                }
                #expect(crossSlot.serverErrorPrefix == "CROSSSLOT")
                #expect((try? results[2].get())?.string == "5")
            }
        }
    }

    /// One `evaluateAll` over keys of every master comes back in the caller's order, also when a slot moved
    /// behind the client's back (`MOVED`) and every master lost its scripts (`NOSCRIPT`, loaded per node).
    @Test(.timeLimit(.minutes(2)))
    func pipelinedScriptsAcrossMastersKeepTheirOrder() async throws {
        try await withRedisClusterDeployment { deployment in
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let calls = (0..<600).map { RedisScriptCall(keys: ["item-\($0)"], arguments: [RedisArgument($0)]) }
                let first = await client.evaluateAll(Self.setAndEcho, calls: calls)
                #expect(first.map { (try? $0.get())?.string } == (0..<600).map { "\($0)" })

                let movedKey = "{moved-behind-the-back}:k"
                let slot = RedisClusterSlot.slot(forKey: movedKey)
                let source = try await deployment.masterPort(forSlot: slot)
                guard let target = try await deployment.masters().first(where: { $0.port != source })?.port else {
                    throw FixtureError("no second master")
                }
                try await deployment.beginMigration(slot: slot, from: source, to: target)
                try await deployment.finishMigration(slot: slot, from: source, to: target)
                for master in try await deployment.masters() {
                    #expect(try await deployment.node(port: master.port).command("SCRIPT", "FLUSH") == "OK")
                }
                try await deployment.waitUntilHealthy()

                var mixed = calls
                var expected = (0..<600).map { "\($0)" }
                for position in stride(from: 0, to: 600, by: 100) {
                    mixed.insert(
                        RedisScriptCall(keys: [movedKey], arguments: [RedisArgument("moved-\(position)")]), at: position
                    )
                    expected.insert("moved-\(position)", at: position)
                }
                let second = await client.evaluateAll(Self.setAndEcho, calls: mixed)
                #expect(second.map { (try? $0.get())?.string } == expected)
                #expect(try await deployment.node(port: target).command("GET", movedKey) == "moved-500")
                #expect(try await Self.errorCount("MOVED", on: try deployment.node(port: source)) >= 1)
                #expect(try await client.send(["GET", movedKey]).string == "moved-500")
            }
        }
    }

    /// During a migration the source answers `ASK` for keys it does not hold: the client sends `ASKING` and
    /// the command to the target; once the slot moved, `MOVED` sends everything there.
    @Test(.timeLimit(.minutes(2)))
    func followsAskDuringAMigrationAndMovedAfterIt() async throws {
        try await withRedisClusterDeployment { deployment in
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let slot = RedisClusterSlot.slot(forKey: "{ask}")
                let source = try await deployment.masterPort(forSlot: slot)
                guard let target = try await deployment.masters().first(where: { $0.port != source })?.port else {
                    throw FixtureError("no second master")
                }
                #expect(try await client.send(["SET", "{ask}old", "before"]).string == "OK")
                try await deployment.beginMigration(slot: slot, from: source, to: target)

                #expect(try await client.send(["SET", "{ask}new", "during"]).string == "OK")
                #expect(
                    try await client.evaluate(Self.setAndEcho, keys: ["{ask}script"], arguments: ["lua"]).string
                        == "lua")
                #expect(try await client.send(["GET", "{ask}new"]).string == "during")
                #expect(try await client.send(["GET", "{ask}old"]).string == "before", "the source still holds it")
                let targetNode = try deployment.node(port: target)
                #expect(try await targetNode.command("CLUSTER", "COUNTKEYSINSLOT", String(slot)) == "2")
                #expect(try await Self.errorCount("ASK", on: try deployment.node(port: source)) >= 3)

                try await deployment.finishMigration(slot: slot, from: source, to: target)
                #expect(try await client.send(["GET", "{ask}old"]).string == "before")
                #expect(try await client.send(["GET", "{ask}new"]).string == "during")
                #expect(try await targetNode.command("CLUSTER", "COUNTKEYSINSLOT", String(slot)) == "3")
                #expect(try await Self.errorCount("MOVED", on: try deployment.node(port: source)) >= 1)
            }
        }
    }

    /// `redis-cli --cluster reshard` moves thousands of slots, keys and all, while eight tasks increment
    /// pairs of keys (one script, two keys under one hash tag): no call fails and no increment is lost.
    @Test(.timeLimit(.minutes(4)))
    func reshardingUnderLoadLosesNothing() async throws {
        try await withRedisClusterDeployment { deployment in
            try await withRedisClient(try deployment.configuration()) { (client: RedisClient) async throws -> Void in
                let incrementPair = RedisScript(
                    name: "increment-pair", source: "redis.call('INCR', KEYS[1]) return redis.call('INCR', KEYS[2])")
                let tags = 2000
                let workers = 8
                let stop = StopFlag()
                let masters = try await deployment.masters().map(\.port)
                let started = ContinuousClock.now
                let results = try await withThrowingTaskGroup(of: WorkerResult.self) { group in
                    for worker in 0..<workers {
                        group.addTask {
                            var result = WorkerResult()
                            var round = 0
                            while !stop.isSet || round < 2 {
                                for tag in stride(from: worker, to: tags, by: workers) {
                                    do {
                                        let reply = try await client.evaluate(
                                            incrementPair, keys: ["{p\(tag)}:a", "{p\(tag)}:b"], arguments: [])
                                        result.counts[tag, default: 0] += 1
                                        if reply.integer != Int64(result.counts[tag, default: 0]) {
                                            result.failures.append("{p\(tag)} answered \(reply)")
                                        }
                                    } catch {
                                        result.failures.append("{p\(tag)}: \(error)")
                                    }
                                }
                                round += 1
                            }
                            return result
                        }
                    }
                    group.addTask {
                        defer { stop.set() }
                        try await deployment.reshard(slots: 2000, from: masters[0], to: masters[1])
                        try await deployment.reshard(slots: 1500, from: masters[1], to: masters[2])
                        return WorkerResult()
                    }
                    var all: [WorkerResult] = []
                    for try await result in group { all.append(result) }
                    return all
                }
                let failures = results.flatMap(\.failures)
                let counts = results.reduce(into: [Int: Int]()) { $0.merge($1.counts) { $0 + $1 } }
                let calls = counts.values.reduce(0, +)
                print("cluster reshard under load: \(calls) scripts in \(ContinuousClock.now - started)")
                #expect(failures.isEmpty, "\(failures.count) failed, first: \(failures.prefix(3))")
                #expect(calls >= 2 * tags)
                let sent = (0..<tags).flatMap { tag in
                    [["GET", "{p\(tag)}:a"], ["GET", "{p\(tag)}:b"]] as [RedisCommand]
                }
                let stored = await client.pipeline(sent)
                let expected = (0..<tags).flatMap { tag in Array(repeating: "\(counts[tag] ?? -1)", count: 2) }
                #expect(stored.map { (try? $0.get())?.string } == expected)
                let moved = try await Self.errorCount("MOVED", on: try deployment.node(port: masters[0]))
                #expect(moved > 0, "the load saw the slots move")
            }
        }
    }

    /// kill -9 of a master under load: the client reports `.disconnected`, follows the promoted replica
    /// (`.connected` again), and every write `WAIT 1` confirmed before the kill is readable after it.
    @Test(.timeLimit(.minutes(3)))
    func followsThePromotedReplicaAfterAMasterIsKilled() async throws {
        try await withRedisClusterDeployment { deployment in
            let client = RedisClient(configuration: try deployment.configuration(), logger: testLogger("cluster"))
            let events = client.connectionEvents()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { group.cancelAll() }
                try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
                let write = RedisScript(name: "write", source: "return redis.call('SET', KEYS[1], ARGV[1])")
                let replication = RedisReplicationRequirement(replicas: 1, timeout: .seconds(1))
                guard let victim = try await deployment.masters().first(where: { $0.serves(0) }) else {
                    throw FixtureError("no master serves slot 0")
                }
                let stop = StopFlag()
                let killed = StopFlag()
                let writers = try await withThrowingTaskGroup(of: [String].self) { writers in
                    for writer in 0..<6 {
                        writers.addTask {
                            var confirmed: [String] = []
                            var index = 0
                            while !stop.isSet {
                                let key = "w\(writer)-\(index)"
                                index += 1
                                do {
                                    _ = try await client.evaluate(
                                        write, keys: [key], arguments: ["v"], replication: replication,
                                        confirmingWhen: { _ in true })
                                    if !killed.isSet { confirmed.append(key) }
                                } catch {
                                    // fail fast while the master is gone; the load goes on
                                    try await Task.sleep(for: .milliseconds(2))
                                }
                            }
                            return confirmed
                        }
                    }
                    try await Task.sleep(for: .seconds(1))
                    try deployment.node(port: victim.port).stop()
                    killed.set()
                    let killedAt = ContinuousClock.now
                    try await waitFor(events, timeout: .seconds(30)) {
                        if case .disconnected = $0 { true } else { false }
                    }
                    try await waitFor(events, timeout: .seconds(30)) {
                        if case .connected(let generation) = $0 { generation > 1 } else { false }
                    }
                    print("cluster failover: usable again \(ContinuousClock.now - killedAt) after kill -9")
                    try await Task.sleep(for: .milliseconds(500))
                    stop.set()
                    var all: [String] = []
                    for try await keys in writers { all += keys }
                    return all
                }
                let newMaster = try await deployment.waitForFailover(from: victim.port, slots: victim.slots)
                #expect(newMaster != victim.port)
                let onVictimSlots = writers.filter { victim.serves(RedisClusterSlot.slot(forKey: $0)) }
                #expect(writers.count > 300)
                #expect(onVictimSlots.count > 50)
                let values = await client.pipeline(writers.map { ["GET", $0] })
                let missing = zip(writers, values).filter { (try? $1.get())?.string != "v" }.map(\.0)
                #expect(missing.isEmpty, "\(missing.count) of \(writers.count) confirmed writes are gone")
                print(
                    "cluster failover: \(writers.count - missing.count) of \(writers.count) writes confirmed by WAIT "
                        + "before the kill are readable (\(onVictimSlots.count) on the killed master's slots)")
                let key = Self.key(inSlot: 0, suffix: ":after")
                #expect(try await client.send(["SET", key, "after"]).string == "OK")
                #expect(try await deployment.node(port: newMaster).command("GET", key) == "after")
                #expect(client.isConnected)
            }
        }
    }

    /// `rediss-cluster://`: every port of every node speaks only TLS; the client takes the `tls-port` each
    /// node announces in `CLUSTER SHARDS` and verifies every certificate against the test CA.
    @Test(.timeLimit(.minutes(2)))
    func speaksTLSToEveryNode() async throws {
        try await withTemporaryDirectory { directory in
            let certificates = try TestCertificates.generate(in: directory)
            let files = RedisClusterDeployment.TLSFiles(
                certificate: certificates.serverCertificate, key: certificates.serverKey,
                clientCertificate: certificates.clientCertificate, clientKey: certificates.clientKey,
                authority: certificates.caCertificate)
            try await withRedisClusterDeployment(tls: files) { deployment in
                #expect(deployment.url.hasPrefix("rediss-cluster://"))
                var configuration = try deployment.configuration()
                #expect(configuration.tls != nil)
                configuration.tls?.caFile = certificates.caCertificate
                try await withRedisClient(configuration) { (client: RedisClient) async throws -> Void in
                    let keys = (0..<1000).map { "secure-\($0)" }
                    let replies = await client.evaluateAll(
                        Self.setAndEcho, calls: keys.map { RedisScriptCall(keys: [$0], arguments: ["yes"]) })
                    #expect(replies.filter { (try? $0.get())?.string == "yes" }.count == keys.count)
                    var stored = 0
                    for master in try await deployment.masters() {
                        stored += Int(try await deployment.node(port: master.port).command("DBSIZE")) ?? 0
                    }
                    #expect(stored == keys.count, "every master holds its share")
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func unreachableSeedsAreReportedOneByOne() async throws {
        let ports = [try await freeLoopbackPort(), try await freeLoopbackPort()]
        var configuration = try RedisConfiguration(
            url: "redis-cluster://" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ","))
        configuration.reconnect = .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200))
        let client = RedisClient(configuration: configuration, logger: testLogger("cluster"))
        let events = client.connectionEvents()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            defer { group.cancelAll() }
            let event = try await waitFor(events, timeout: .seconds(20)) {
                if case .connectFailed = $0 { true } else { false }
            }
            guard case .connectFailed(let error) = event else { throw FixtureError("no failure") }
            #expect(error.code == .connection)
            #expect(error.message.contains("CLUSTER SHARDS"))
            for port in ports { #expect(error.message.contains("127.0.0.1:\(port)")) }
            let sendError = await #expect(throws: RedisError.self) { try await client.send(["GET", "k"]) }
            #expect(sendError?.code == .connection, "fails fast while no map is loaded")
            #expect(!client.isConnected)
        }
    }
}

/// What one load task did: successful calls per tag, and every failure.
private struct WorkerResult: Sendable {
    var counts: [Int: Int] = [:]
    var failures: [String] = []
}

/// A flag the load tasks poll (stop, or: the master was killed).
private final class StopFlag: Sendable {
    private let value = Atomic(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
