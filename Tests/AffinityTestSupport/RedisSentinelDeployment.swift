public import AffinityRedis
import Foundation

/// A Sentinel-managed Redis on loopback: a master, one replica (`--replicaof`) and three sentinels
/// (`redis-server <conf> --sentinel`, quorum 2, a node counts as down after `downAfter`), all real processes
/// with their configuration in a temporary directory. Tests fail (never skip) without `redis-server`.
public final class RedisSentinelDeployment: @unchecked Sendable {
    /// The name the sentinels monitor the master under.
    public let masterName = "mymaster"
    /// The two data nodes; which one is master changes with failovers (see ``currentMaster()``).
    public let nodes: [RedisServerProcess]
    /// The three sentinels.
    public let sentinels: [RedisServerProcess]
    /// The data nodes' password, or nil.
    public let password: String?
    /// The sentinels' password, or nil.
    public let sentinelPassword: String?

    init(nodes: [RedisServerProcess], sentinels: [RedisServerProcess], password: String?, sentinelPassword: String?) {
        self.nodes = nodes
        self.sentinels = sentinels
        self.password = password
        self.sentinelPassword = sentinelPassword
    }

    /// The certificate, key and CA of the TLS ports of every process (data nodes and sentinels).
    public struct TLSFiles: Sendable {
        /// PEM certificate for 127.0.0.1.
        public var certificate: String
        /// Its PEM key.
        public var key: String
        /// The PEM CA that issued it.
        public var authority: String

        /// Creates the file set.
        public init(certificate: String, key: String, authority: String) {
            self.certificate = certificate
            self.key = key
            self.authority = authority
        }
    }

    /// `redis-sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/0#mymaster` (`rediss-sentinel://` with TLS).
    public var url: String {
        (sentinels[0].tls ? "rediss-sentinel://" : "redis-sentinel://")
            + sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") + "/0#\(masterName)"
    }

    /// A client configuration for the deployment (fast reconnects, passwords set when the deployment has
    /// them).
    public func configuration() throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnect = .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200))
        configuration.password = password
        if case .sentinel(var settings) = configuration.topology {
            settings.password = sentinelPassword
            configuration.topology = .sentinel(settings)
        }
        return configuration
    }

    /// The master's port as the first sentinel that answers names it.
    public func currentMaster() async throws -> Int {
        for sentinel in sentinels where sentinel.isRunning {
            let words = try await sentinel.command(
                arguments: authArguments(sentinelPassword) + ["SENTINEL", "get-master-addr-by-name", masterName]
            ).split(whereSeparator: \.isNewline)
            if words.count == 2, let port = Int(words[1].trimmingCharacters(in: .whitespaces)) { return port }
        }
        throw FixtureError("no sentinel names a master")
    }

    /// The data node listening on `port`.
    public func node(port: Int) throws -> RedisServerProcess {
        guard let node = nodes.first(where: { $0.port == port }) else { throw FixtureError("no node on port \(port)") }
        return node
    }

    /// Waits until every running sentinel names a master other than `oldPort` and that node answers
    /// `ROLE` as master; returns its port.
    @discardableResult
    public func waitForFailover(from oldPort: Int, timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        var seen = "no answer"
        while ContinuousClock.now < deadline {
            // the old master may be frozen (SIGSTOP): never ask it anything, redis-cli would wait forever
            if let port = try? await currentMaster() {
                seen = "the sentinels name port \(port)"
                if port != oldPort {
                    let role = try await node(port: port).command(arguments: authArguments(password) + ["ROLE"])
                    seen += ", whose ROLE is \(role.split(whereSeparator: \.isNewline).first ?? "")"
                    if role.hasPrefix("master") { return port }
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("the sentinels did not fail over from port \(oldPort) within \(timeout): \(seen)")
    }

    /// Waits until the master on `masterPort` reports `replicas` connected replicas in sync (`connected_slaves`
    /// and each `state=online`).
    public func waitForReplicas(_ replicas: Int, of masterPort: Int, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let info = try await node(port: masterPort).command(
                arguments: authArguments(password) + ["INFO", "replication"])
            let online = info.split(whereSeparator: \.isNewline).filter {
                $0.hasPrefix("slave") && $0.contains("state=online")
            }
            if online.count >= replicas { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError(
            "the master on port \(masterPort) did not have \(replicas) replicas online within \(timeout)")
    }

    /// Waits until every sentinel knows both data nodes and the other two sentinels (so that a failover can
    /// be authorised by a quorum).
    public func waitUntilSentinelsAgree(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var ready = true
            for sentinel in sentinels {
                let text = try await sentinel.command(
                    arguments: authArguments(sentinelPassword) + ["SENTINEL", "master", masterName])
                let lines = text.split(whereSeparator: \.isNewline).map(String.init)
                func field(_ name: String) -> Int? {
                    guard let index = lines.firstIndex(of: name), index + 1 < lines.count else { return nil }
                    return Int(lines[index + 1])
                }
                if (field("num-slaves") ?? 0) < nodes.count - 1 || (field("num-other-sentinels") ?? 0) < 2 {
                    ready = false
                }
            }
            if ready { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("the sentinels did not discover each other and the replica within \(timeout)")
    }

    func stopAll() {
        (sentinels + nodes).forEach { $0.stop() }
    }
}

private func authArguments(_ password: String?) -> [String] {
    password.map { ["--no-auth-warning", "-a", $0] } ?? []
}

/// Runs `body` with a master, a replica and three sentinels on free loopback ports, configured in a temporary
/// directory; kills them all afterwards. `password` protects the data nodes, `sentinelPassword` the
/// sentinels.
public func withRedisSentinelDeployment<T>(
    password: String? = nil, sentinelPassword: String? = nil, downAfter: Duration = .milliseconds(1000),
    tls: RedisSentinelDeployment.TLSFiles? = nil,
    _ body: (RedisSentinelDeployment) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        let passwordArguments = password.map { ["--requirepass", $0, "--masterauth", $0] } ?? []
        let tlsArguments =
            tls.map {
                [
                    "--tls-cert-file", $0.certificate, "--tls-key-file", $0.key, "--tls-ca-cert-file", $0.authority,
                    "--tls-auth-clients", "no", "--tls-replication", "yes",
                ]
            } ?? []
        let masterPort = try await freeLoopbackPort()
        let master = RedisServerProcess(
            port: masterPort, directory: directory, extraArguments: passwordArguments + tlsArguments, tls: tls != nil)
        let replica = RedisServerProcess(
            port: try await freeLoopbackPort(), directory: directory,
            extraArguments: passwordArguments + tlsArguments + ["--replicaof", "127.0.0.1", String(masterPort)],
            tls: tls != nil)
        var sentinels: [RedisServerProcess] = []
        for _ in 0..<3 {
            let port = try await freeLoopbackPort()
            let configuration = directory.appendingPathComponent("sentinel-\(port).conf")
            var lines = [
                "port \(port)", "bind 127.0.0.1", "dir \(directory.path)",
                "sentinel monitor mymaster 127.0.0.1 \(masterPort) 2",
                "sentinel down-after-milliseconds mymaster \(Int(downAfter / .milliseconds(1)))",
                "sentinel failover-timeout mymaster 10000", "sentinel parallel-syncs mymaster 1",
            ]
            if let password { lines.append("sentinel auth-pass mymaster \(password)") }
            if let sentinelPassword { lines.append("requirepass \(sentinelPassword)") }
            try (lines.joined(separator: "\n") + "\n").write(to: configuration, atomically: true, encoding: .utf8)
            sentinels.append(
                RedisServerProcess(
                    port: port, directory: directory, extraArguments: tlsArguments, tls: tls != nil,
                    configurationFile: configuration.path, sentinel: true))
        }
        if let tls {
            for server in [master, replica] + sentinels { server.cliArguments = ["--tls", "--cacert", tls.authority] }
        }
        let deployment = RedisSentinelDeployment(
            nodes: [master, replica], sentinels: sentinels, password: password, sentinelPassword: sentinelPassword)
        defer { deployment.stopAll() }
        try await master.start()
        try await replica.start()
        for sentinel in sentinels { try await sentinel.start() }
        try await deployment.waitForReplicas(1, of: masterPort)
        try await deployment.waitUntilSentinelsAgree()
        return try await body(deployment)
    }
}
