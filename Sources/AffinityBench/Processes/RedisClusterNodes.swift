import Foundation

/// A Redis Cluster on loopback for the `redis-cluster` phase, built as the tests' fixture builds one: six
/// `redis-server --cluster-enabled yes` (no persistence), joined by `redis-cli --cluster create
/// --cluster-replicas 1` into three masters with one replica each.
public final class RedisClusterNodes: BenchRedis {
    /// Every node, in start order.
    public let nodes: [RedisServer]
    /// The three masters once the cluster was created (their `INFO commandstats` make the command counts).
    public let masters: [RedisServer]

    /// Starts the six nodes in `directory`, creates the cluster and waits until every node reports
    /// `cluster_state:ok` and every master has its replica online (so that `WAIT 1` is answered). On failure
    /// every node started so far is killed.
    public static func start(in directory: URL, nodeTimeout: Duration = .seconds(5)) async throws -> RedisClusterNodes {
        let cli = try ExecutableLocator.onPath("redis-cli", package: "redis-tools")
        var nodes: [RedisServer] = []
        do {
            for _ in 0..<6 {
                // the bus port would default to port + 10000, inside the range the load's connections use
                let busPort = try await FreePort.below32768()
                nodes.append(
                    try await RedisServer.start(
                        in: directory,
                        extraArguments: [
                            "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(busPort).conf",
                            "--cluster-port", "\(busPort)",
                            "--cluster-node-timeout", "\(Int(nodeTimeout / .milliseconds(1)))",
                        ]))
            }
            try await create(nodes, cli: cli, directory: directory)
            let masters = try await waitUntilHealthy(nodes, timeout: .seconds(30))
            return RedisClusterNodes(nodes: nodes, masters: masters)
        } catch {
            nodes.forEach { $0.stop() }
            throw error
        }
    }

    private init(nodes: [RedisServer], masters: [RedisServer]) {
        self.nodes = nodes
        self.masters = masters
    }

    /// `redis-cluster://` with three of the nodes as seeds (the replicas learn the rest from `CLUSTER SHARDS`).
    public var url: String {
        "redis-cluster://" + nodes.prefix(3).map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// Every node's process.
    public var processes: [ChildProcess] { nodes.map(\.process) }

    /// The calls per command so far, summed over the masters (asked in parallel, so that the snapshot is
    /// close to one moment).
    public func commandCalls() async throws -> [String: Int] {
        try await withThrowingTaskGroup(of: [String: Int].self) { group in
            for master in masters { group.addTask { try await master.commandCalls() } }
            var calls: [[String: Int]] = []
            for try await counts in group { calls.append(counts) }
            return CommandStats.sum(calls)
        }
    }

    /// Kills every node.
    public func stop() { nodes.forEach { $0.stop() } }

    /// `redis-cli --cluster create`, killed if it hangs (it waits forever for nodes that cannot meet).
    private static func create(_ nodes: [RedisServer], cli: String, directory: URL) async throws {
        let process = try ChildProcess(
            name: "redis-cli --cluster create", executable: cli,
            arguments: ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" } + [
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            logFile: directory.appendingPathComponent("redis-cluster-create-\(nodes[0].port).log"))
        defer { process.kill() }
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                throw BenchError(
                    .processFailed, "redis-cli --cluster create did not finish in 60 s:\n\(process.logTail)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard process.exitStatus == 0, process.log.contains("All 16384 slots covered") else {
            throw BenchError(
                .processFailed,
                "redis-cli --cluster create failed (status \(process.exitStatus.map(String.init) ?? "?")):\n"
                    + process.logTail)
        }
    }

    /// Waits until every node reports `cluster_state:ok` and three masters each have a replica online; returns
    /// the masters.
    private static func waitUntilHealthy(_ nodes: [RedisServer], timeout: Duration) async throws -> [RedisServer] {
        let deadline = ContinuousClock.now + timeout
        var problem = "not asked yet"
        while ContinuousClock.now < deadline {
            var masters: [RedisServer] = []
            problem = ""
            for node in nodes {
                let state = try await node.command(["CLUSTER", "INFO"])
                guard Self.isHealthy(clusterInfo: state) else {
                    problem = "port \(node.port) is not cluster_state:ok"
                    break
                }
                let replication = try await node.command(["INFO", "replication"])
                if Self.role(inReplicationInfo: replication) == "master" {
                    guard Self.onlineReplicas(inReplicationInfo: replication) >= 1 else {
                        problem = "master on port \(node.port) has no replica online"
                        break
                    }
                    masters.append(node)
                }
            }
            if problem.isEmpty && masters.count == 3 { return masters }
            if problem.isEmpty { problem = "\(masters.count) masters instead of 3" }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError(.processFailed, "the redis cluster did not become healthy within \(timeout): \(problem)")
    }

    /// Whether `CLUSTER INFO` says `cluster_state:ok`.
    static func isHealthy(clusterInfo text: String) -> Bool {
        field("cluster_state", in: text) == "ok"
    }

    /// `role` of `INFO replication` (`master` or `slave`).
    static func role(inReplicationInfo text: String) -> String? {
        field("role", in: text)
    }

    /// The replicas `INFO replication` of a master lists as `state=online`.
    static func onlineReplicas(inReplicationInfo text: String) -> Int {
        text.split(whereSeparator: \.isNewline).filter { line in
            line.hasPrefix("slave") && line.contains(":") && line.split(separator: ",").contains("state=online")
        }.count
    }

    /// The value of `name:value` in `INFO`-style text.
    private static func field(_ name: String, in text: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("\(name):") {
            return line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
