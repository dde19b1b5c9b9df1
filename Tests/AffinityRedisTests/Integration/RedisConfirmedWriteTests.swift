import AffinityRedis
import AffinityTestSupport
import Foundation
import Testing

/// Confirmed writes (a script followed by `WAIT`) against real processes, with the replica frozen (SIGSTOP) so
/// that every `WAIT` waits its whole timeout: the write still comes back `replication` after that timeout, and
/// meanwhile every other command (reads, pipelines such as a route refresh) is answered at once, because the
/// confirmed write and its `WAIT` run on a connection of their own.
@Suite("Confirmed writes (WAIT) on their own connection", .serialized)
struct RedisConfirmedWriteTests {
    static let write = RedisScript(name: "write", source: "return redis.call('SET', KEYS[1], ARGV[1])")
    static let read = RedisScript(name: "read", source: "return redis.call('GET', KEYS[1])")
    /// Long enough that a command queued behind the `WAIT` would miss the client's 2 s command timeout.
    static let waitTimeout = Duration.seconds(3)

    @Test(.timeLimit(.minutes(2)))
    func aWaitForAFrozenReplicaHoldsUpNoOtherCommand() async throws {
        try await withTemporaryDirectory { directory in
            let master = RedisServerProcess(
                port: try await freeLoopbackPort(), directory: directory, extraArguments: [], tls: false)
            let replica = RedisServerProcess(
                port: try await freeLoopbackPort(), directory: directory,
                extraArguments: ["--replicaof", "127.0.0.1", String(master.port)], tls: false)
            defer {
                replica.stop()
                master.stop()
            }
            try await master.start()
            try await replica.start()
            try await Self.waitForOnlineReplica(of: master)
            try await withRedisClient(master.configuration()) { client in
                try await Self.expectWaitHoldsUpNothing(
                    client, master: master, replica: replica, keys: (0..<40).map { "key-\($0)" })
            }
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func aWaitForAFrozenClusterReplicaHoldsUpNoOtherCommandOnItsMaster() async throws {
        try await withRedisClusterDeployment { deployment in
            guard let owner = try await deployment.masters().first(where: { $0.serves(0) }) else {
                throw FixtureError("no master serves slot 0")
            }
            let master = try deployment.node(port: owner.port)
            let replica = try deployment.node(port: try await Self.replicaPort(of: master))
            // every key on the master whose replica is frozen: the WAIT and the other commands share that node
            let keys = Array(
                (0...).lazy.map { "{m\($0)}k" }.filter { owner.serves(RedisClusterSlot.slot(forKey: $0)) }.prefix(40))
            try await withRedisClient(try deployment.configuration()) { client in
                try await Self.expectWaitHoldsUpNothing(client, master: master, replica: replica, keys: keys)
            }
        }
    }

    /// Confirms one write with the replica running; freezes the replica; starts a confirmed write that must
    /// wait its whole timeout; and while that `WAIT` is blocked on the master, sends plain commands, a
    /// pipeline and a script pipeline, each of which must be answered promptly. Thaws the replica at the end.
    static func expectWaitHoldsUpNothing(
        _ client: RedisClient, master: RedisServerProcess, replica: RedisServerProcess, keys: [String]
    ) async throws {
        let replication = RedisReplicationRequirement(replicas: 1, timeout: waitTimeout)
        for key in keys {
            _ = try await client.evaluate(
                write, keys: [key], arguments: ["before"], replication: replication, confirmingWhen: { _ in true })
        }
        replica.signal(SIGSTOP)
        defer { replica.signal(SIGCONT) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let started = ContinuousClock.now
                let error = await #expect(throws: RedisError.self) {
                    try await client.evaluate(
                        write, keys: [keys[0]], arguments: ["unconfirmed"], replication: replication,
                        confirmingWhen: { _ in true }, timeout: .seconds(2))
                }
                #expect(error?.code == .replication, "\(String(describing: error))")
                #expect(ContinuousClock.now - started >= waitTimeout - .milliseconds(200))
            }
            try await waitUntilAClientIsBlocked(on: master)
            let started = ContinuousClock.now
            for key in keys.dropFirst() {
                #expect(try await client.send(["GET", key]).string == "before")
            }
            let pipelined = await client.pipeline(keys.dropFirst().map { ["GET", $0] })
            #expect(pipelined.allSatisfy { (try? $0.get())?.string == "before" })
            let scripted = await client.evaluateAll(
                read, calls: keys.dropFirst().map { RedisScriptCall(keys: [$0], arguments: []) })
            #expect(scripted.allSatisfy { (try? $0.get())?.string == "before" })
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(1), "commands waited \(elapsed) behind a WAIT")
            // the WAIT is still blocked: the commands above did not wait for it
            #expect(try await blockedClients(on: master) == 1)
            try await group.waitForAll()
        }
        // the write happened on the master, only its confirmation failed
        #expect(try await client.send(["GET", keys[0]]).string == "unconfirmed")
    }

    /// Waits until the master has replicas online.
    static func waitForOnlineReplica(of master: RedisServerProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if try await master.command("INFO", "replication").contains("state=online") { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("the replica of port \(master.port) did not come online")
    }

    /// The port of the (first) replica connected to `master` (`INFO replication`: `slave0:ip=...,port=...`).
    static func replicaPort(of master: RedisServerProcess) async throws -> Int {
        try await waitForOnlineReplica(of: master)
        let info = try await master.command("INFO", "replication")
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("slave0:") }),
            let field = line.split(separator: ",").first(where: { $0.hasPrefix("port=") }),
            let port = Int(field.dropFirst("port=".count))
        else { throw FixtureError("no replica in INFO replication of port \(master.port): \(info)") }
        return port
    }

    /// The master's `blocked_clients` (`INFO clients`).
    static func blockedClients(on master: RedisServerProcess) async throws -> Int {
        let info = try await master.command("INFO", "clients")
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("blocked_clients:") }),
            let count = Int(line.dropFirst("blocked_clients:".count).trimmingCharacters(in: .whitespaces))
        else { throw FixtureError("no blocked_clients in INFO clients: \(info)") }
        return count
    }

    /// Waits until a client of the master is blocked (the `WAIT`).
    static func waitUntilAClientIsBlocked(on master: RedisServerProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            if try await blockedClients(on: master) > 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw FixtureError("no client of port \(master.port) blocked in WAIT")
    }
}
