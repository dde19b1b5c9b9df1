public import AffinityRedis
import Foundation

/// A Redis Cluster on loopback: three masters with one replica each (`redis-server --cluster-enabled yes`,
/// joined with `redis-cli --cluster create ... --cluster-replicas 1`), all real processes with their files in a
/// temporary directory; with TLS, every port (clients, cluster bus, replication) speaks only TLS. Tests fail
/// (never skip) without `redis-server` and `redis-cli`.
public final class RedisClusterDeployment: @unchecked Sendable {
    /// The six data nodes, in the order given to `redis-cli --cluster create` (which makes the first three
    /// masters); which ones are masters changes with failovers (see ``nodesView()``).
    public let nodes: [RedisServerProcess]
    /// `--cluster-node-timeout`: how long a master must be unreachable before its replica takes over.
    public let nodeTimeout: Duration

    /// The certificates of a TLS-only cluster. The cluster bus always authenticates both ends, so every node
    /// also needs a client certificate (`tls-client-cert-file`) from the same CA.
    public struct TLSFiles: Sendable {
        /// PEM server certificate for 127.0.0.1.
        public var certificate: String
        /// Its PEM key.
        public var key: String
        /// PEM client certificate (`extendedKeyUsage=clientAuth`) the nodes present to each other.
        public var clientCertificate: String
        /// Its PEM key.
        public var clientKey: String
        /// The PEM CA that issued both.
        public var authority: String

        /// Creates the file set.
        public init(certificate: String, key: String, clientCertificate: String, clientKey: String, authority: String) {
            self.certificate = certificate
            self.key = key
            self.clientCertificate = clientCertificate
            self.clientKey = clientKey
            self.authority = authority
        }
    }

    /// `redis-cli` arguments for the TLS ports (`--tls --cacert <ca>`), empty without TLS.
    let cliTLSArguments: [String]

    init(nodes: [RedisServerProcess], nodeTimeout: Duration, cliTLSArguments: [String]) {
        self.nodes = nodes
        self.nodeTimeout = nodeTimeout
        self.cliTLSArguments = cliTLSArguments
    }

    /// One line of `CLUSTER NODES`.
    public struct Node: Sendable, Hashable {
        /// The node id.
        public var id: String
        /// Its port on 127.0.0.1.
        public var port: Int
        /// Whether it is a master.
        public var isMaster: Bool
        /// Whether the cluster considers it failed (`fail` or `fail?`).
        public var isFailing: Bool
        /// The slots it serves (masters only).
        public var slots: [ClosedRange<Int>]

        /// Whether it serves `slot`.
        public func serves(_ slot: Int) -> Bool { slots.contains { $0.contains(slot) } }
    }

    /// `redis-cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>` (the first three nodes as seeds;
    /// `rediss-cluster://` with TLS).
    public var url: String {
        (cliTLSArguments.isEmpty ? "redis-cluster://" : "rediss-cluster://")
            + nodes.prefix(3).map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// A client configuration for the cluster (fast reconnects).
    public func configuration() throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnect = .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200))
        return configuration
    }

    /// The data node listening on `port`.
    public func node(port: Int) throws -> RedisServerProcess {
        guard let node = nodes.first(where: { $0.port == port }) else { throw FixtureError("no node on port \(port)") }
        return node
    }

    /// The cluster as the first running node sees it (`CLUSTER NODES`).
    public func nodesView() async throws -> [Node] {
        guard let node = nodes.first(where: \.isRunning) else { throw FixtureError("no cluster node runs") }
        return try Self.parseNodes(try await node.command("CLUSTER", "NODES"))
    }

    /// The masters serving slots, as the first running node sees them.
    public func masters() async throws -> [Node] {
        try await nodesView().filter { $0.isMaster && !$0.slots.isEmpty }
    }

    /// The port of the master serving `slot`, as the first running node sees it.
    public func masterPort(forSlot slot: Int) async throws -> Int {
        guard let master = try await masters().first(where: { $0.serves(slot) }) else {
            throw FixtureError("no master serves slot \(slot)")
        }
        return master.port
    }

    /// Runs `redis-cli` with these arguments (no `-h`/`-p` added; the TLS ones with TLS) and returns its exit
    /// status and output (standard output and error together). A `redis-cli` still running after `timeout`
    /// (`--cluster create` waits for the nodes to meet, forever) is killed and reported.
    public func cli(
        _ arguments: [String], timeout: Duration = .seconds(60)
    ) async throws -> (
        status: Int32, output: String
    ) {
        let process = Process()
        process.executableURL = try RedisServerProcess.findExecutable("redis-cli")
        process.arguments = cliTLSArguments + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<(status: Int32, output: String), any Error>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout / .milliseconds(1)))) {
                if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
            }
            DispatchQueue.global().async {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                var text = String(decoding: data, as: UTF8.self)
                if process.terminationReason == .uncaughtSignal {
                    text += "\n(redis-cli was killed after \(timeout))"
                }
                continuation.resume(returning: (process.terminationStatus, text))
            }
        }
    }

    /// Moves `count` slots from the master on `from` to the master on `to` with `redis-cli --cluster reshard`
    /// (keys included, `MIGRATE` in batches of `pipeline` keys), once the cluster is healthy; throws with
    /// redis-cli's output if it fails.
    public func reshard(slots count: Int, from: Int, to: Int, pipeline: Int = 10) async throws {
        // redis-cli refuses to start while the nodes do not agree on the slots yet ("Nodes don't agree about
        // configuration!"), which is how the views look for a moment after the previous reshard; a module run
        // on a loaded machine hit it
        try await waitUntilHealthy()
        let (source, target) = try await ids(from, to)
        let (status, output) = try await cli([
            "--cluster", "reshard", "127.0.0.1:\(from)", "--cluster-from", source, "--cluster-to", target,
            "--cluster-slots", String(count), "--cluster-yes", "--cluster-pipeline", String(pipeline),
        ])
        guard status == 0 else { throw FixtureError("redis-cli --cluster reshard failed (\(status)):\n\(output)") }
    }

    /// Starts migrating `slot` from the master on `from` to the master on `to` as `redis-cli --cluster
    /// reshard` does (`CLUSTER SETSLOT <slot> IMPORTING` on the target, then `MIGRATING` on the source), without
    /// moving any key: the source answers `ASK` for keys it does not have.
    public func beginMigration(slot: Int, from: Int, to: Int) async throws {
        let (source, target) = try await ids(from, to)
        try expectOK(try await node(port: to).command("CLUSTER", "SETSLOT", String(slot), "IMPORTING", source))
        try expectOK(try await node(port: from).command("CLUSTER", "SETSLOT", String(slot), "MIGRATING", target))
    }

    /// Ends a migration begun with ``beginMigration(slot:from:to:)``: moves the slot's keys (`MIGRATE ...
    /// KEYS`) and assigns the slot to the target on the target, the source and every other master.
    public func finishMigration(slot: Int, from: Int, to: Int) async throws {
        let (_, target) = try await ids(from, to)
        let source = try node(port: from)
        while true {
            let keys = try await source.command("CLUSTER", "GETKEYSINSLOT", String(slot), "100")
                .split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
            if keys.isEmpty { break }
            try expectOK(
                try await source.command(
                    arguments: ["MIGRATE", "127.0.0.1", String(to), "", "0", "5000", "KEYS"] + keys))
        }
        try expectOK(try await node(port: to).command("CLUSTER", "SETSLOT", String(slot), "NODE", target))
        try expectOK(try await source.command("CLUSTER", "SETSLOT", String(slot), "NODE", target))
        for master in try await masters() where master.port != from && master.port != to {
            try expectOK(try await node(port: master.port).command("CLUSTER", "SETSLOT", String(slot), "NODE", target))
        }
    }

    private func ids(_ from: Int, _ to: Int) async throws -> (source: String, target: String) {
        let view = try await nodesView()
        guard let source = view.first(where: { $0.port == from }), let target = view.first(where: { $0.port == to })
        else { throw FixtureError("no nodes on ports \(from) and \(to)") }
        return (source.id, target.id)
    }

    private func expectOK(_ output: String) throws {
        guard output == "OK" else { throw FixtureError("redis-cli answered \(output)") }
    }

    /// Waits until every running node reports `cluster_state:ok`, `redis-cli --cluster check` finds every
    /// node agreeing on the slots with none open, and every replica of a running master is in sync.
    public func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        var seen = "nothing yet"
        while ContinuousClock.now < deadline {
            if let problem = try await healthProblem() {
                seen = problem
                try await Task.sleep(for: .milliseconds(100))
            } else {
                return
            }
        }
        throw FixtureError("the redis cluster did not become healthy within \(timeout): \(seen)")
    }

    private func healthProblem() async throws -> String? {
        let running = nodes.filter(\.isRunning)
        for node in running {
            let info = try await node.command("CLUSTER", "INFO")
            guard info.contains("cluster_state:ok") else { return "node \(node.port) is not cluster_state:ok" }
        }
        guard let first = running.first else { return "no node runs" }
        let (status, output) = try await cli(["--cluster", "check", "127.0.0.1:\(first.port)"])
        guard status == 0, output.contains("[OK] All nodes agree"), !output.contains("[WARNING]"),
            !output.contains("[ERR]")
        else {
            return "redis-cli --cluster check: \(output.suffix(300))"
        }
        let view = try await nodesView()
        for replica in view where !replica.isMaster && !replica.isFailing {
            guard let process = running.first(where: { $0.port == replica.port }) else { continue }
            let info = try await process.command("INFO", "replication")
            guard info.contains("master_link_status:up") else { return "replica \(replica.port) is not in sync" }
        }
        return nil
    }

    /// Waits until a master other than `oldPort` serves every slot `oldPort` served and the cluster is
    /// healthy again; returns the new master's port.
    @discardableResult
    public func waitForFailover(
        from oldPort: Int, slots: [ClosedRange<Int>], timeout: Duration = .seconds(30)
    )
        async throws -> Int
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let first = slots.first?.lowerBound, let port = try? await masterPort(forSlot: first), port != oldPort,
                (try? await healthProblem()).flatMap({ $0 }) == nil
            {
                return port
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("no replica took over the slots of the master on port \(oldPort) within \(timeout)")
    }

    /// Parses `CLUSTER NODES`: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
    /// (a slot is `n`, `a-b`, or an open migration `[n->-id]` / `[n-<-id]`, which is skipped).
    static func parseNodes(_ text: String) throws -> [Node] {
        try text.split(whereSeparator: \.isNewline).map { line in
            let words = line.split(separator: " ")
            guard words.count >= 8, let address = words[1].split(separator: "@").first,
                let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...])
            else { throw FixtureError("unexpected CLUSTER NODES line: \(line)") }
            let flags = words[2].split(separator: ",")
            var slots: [ClosedRange<Int>] = []
            for word in words.dropFirst(8) where !word.hasPrefix("[") {
                let bounds = word.split(separator: "-").compactMap { Int($0) }
                if bounds.count == 1 { slots.append(bounds[0]...bounds[0]) }
                if bounds.count == 2 { slots.append(bounds[0]...bounds[1]) }
            }
            return Node(
                id: String(words[0]), port: port, isMaster: flags.contains("master"),
                isFailing: flags.contains("fail") || flags.contains("fail?"), slots: slots)
        }
    }

    func stopAll() {
        nodes.forEach { $0.stop() }
    }
}

/// Runs `body` with a Redis Cluster of three masters and three replicas on free loopback ports, created with
/// `redis-cli --cluster create --cluster-replicas 1` in a temporary directory, healthy and with every replica
/// in sync; kills every node afterwards. `nodeTimeout` is `--cluster-node-timeout` (how fast a dead master is
/// replaced); with `tls`, every port speaks only TLS with these files.
public func withRedisClusterDeployment<T>(
    nodeTimeout: Duration = .milliseconds(1000), tls: RedisClusterDeployment.TLSFiles? = nil,
    _ body: (RedisClusterDeployment) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        let tlsArguments =
            tls.map {
                [
                    "--tls-cert-file", $0.certificate, "--tls-key-file", $0.key, "--tls-ca-cert-file", $0.authority,
                    "--tls-client-cert-file", $0.clientCertificate, "--tls-client-key-file", $0.clientKey,
                    "--tls-auth-clients", "no", "--tls-replication", "yes", "--tls-cluster", "yes",
                ]
            } ?? []
        let cliTLSArguments = tls.map { ["--tls", "--cacert", $0.authority] } ?? []
        var nodes: [RedisServerProcess] = []
        for _ in 0..<6 {
            let port = try await freeLoopbackPort()
            // the bus port would default to port + 10000, inside the ephemeral range that client sockets use
            let busPort = try await freeLoopbackPort()
            let node = RedisServerProcess(
                port: port, directory: directory,
                extraArguments: [
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(port).conf",
                    "--cluster-port", String(busPort),
                    "--cluster-node-timeout", String(Int(nodeTimeout / .milliseconds(1))),
                ] + tlsArguments, tls: tls != nil)
            node.cliArguments = cliTLSArguments
            nodes.append(node)
        }
        let deployment = RedisClusterDeployment(
            nodes: nodes, nodeTimeout: nodeTimeout, cliTLSArguments: cliTLSArguments)
        defer { deployment.stopAll() }
        for node in nodes { try await node.start() }
        let (status, output) = try await deployment.cli(
            ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" } + [
                "--cluster-replicas", "1", "--cluster-yes",
            ])
        guard status == 0 else { throw FixtureError("redis-cli --cluster create failed (\(status)):\n\(output)") }
        try await deployment.waitUntilHealthy()
        return try await body(deployment)
    }
}
