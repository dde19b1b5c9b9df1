import Foundation

/// The server processes of one measurement: one replica on the embedded store, one or three replicas in
/// cluster mode sharing a `redis-server`, or three replicas on a Redis Cluster, all started by the benchmark
/// and killed by ``stop()``.
public final class ReplicaSet: Sendable {
    /// What to start.
    public enum Layout: String, Sendable, Codable {
        /// One replica, embedded in-memory store (no Redis).
        case memory
        /// One replica in cluster mode with Redis.
        case single
        /// Three replicas in cluster mode with Redis.
        case cluster
        /// Three replicas in cluster mode on a Redis Cluster of three masters with one replica each
        /// (`redis-cluster://`; parks and acks wait for the replica, `--redis-wait-replicas` 1).
        case redisCluster = "redis-cluster"

        /// How many replicas the layout runs.
        public var replicaCount: Int {
            switch self {
            case .memory, .single: 1
            case .cluster, .redisCluster: 3
            }
        }

        /// The prefix of the layout's metrics in the report (`redis_cluster.outcomes_per_second`).
        public var metricPrefix: String {
            self == .redisCluster ? "redis_cluster" : rawValue
        }
    }

    /// One running replica.
    public struct Replica: Sendable {
        /// Its replica id (`r1`...).
        public let id: String
        /// Its WebSocket + HTTP port.
        public let port: Int
        /// The process.
        public let process: ChildProcess
    }

    /// The layout.
    public let layout: Layout
    /// The replicas, in start order.
    public let replicas: [Replica]
    /// The Redis the replicas share (every layout but `memory`).
    public let redis: (any BenchRedis)?

    private init(layout: Layout, replicas: [Replica], redis: (any BenchRedis)?) {
        self.layout = layout
        self.replicas = replicas
        self.redis = redis
    }

    /// Starts the layout's processes in `directory` and waits until every replica listens (and, in cluster
    /// mode, is registered in Redis). With `cpu`, every replica runs pinned to that CPU (`taskset -c`, which
    /// execs the server: the process id stays the server's). On failure everything started so far is killed.
    public static func start(
        _ layout: Layout, serverPath: String, certificates: PeerCertificates?, directory: URL,
        eventLoopThreads: Int? = nil, cpu: Int? = nil
    ) async throws -> ReplicaSet {
        var redis: (any BenchRedis)?
        var started: [Replica] = []
        do {
            switch layout {
            case .memory: break
            case .single, .cluster: redis = try await RedisServer.start(in: directory)
            case .redisCluster: redis = try await RedisClusterNodes.start(in: directory)
            }
            for index in 1...layout.replicaCount {
                let id = "r\(index)"
                var arguments = ["--host", "127.0.0.1", "--port", "0", "--replica-id", id, "--log-level", "info"]
                // the idle phase holds --idle-connections (10000 by default) plus the load's own
                // connections on one replica: lift the default cap, which sizes a 512 MiB pod
                arguments += ["--max-connections", "1000000"]
                if let eventLoopThreads { arguments += ["--event-loop-threads", "\(eventLoopThreads)"] }
                if let redis {
                    guard let certificates else {
                        throw BenchError(.invalidArgument, "cluster mode needs peer certificates")
                    }
                    let peerPort = try await FreePort.below32768()
                    arguments += [
                        "--redis-url", redis.url, "--peer-port", "\(peerPort)",
                        "--peer-advertise-address", "127.0.0.1:\(peerPort)",
                        "--peer-tls-cert", certificates.certificatePath, "--peer-tls-key", certificates.keyPath,
                        "--peer-tls-ca", certificates.authorityPath,
                    ]
                }
                var executable = serverPath
                if let cpu {
                    executable = try ExecutableLocator.onPath("taskset", package: "util-linux")
                    arguments = ["-c", "\(cpu)", serverPath] + arguments
                }
                let process = try ChildProcess(
                    name: "affinity-server \(id)", executable: executable, arguments: arguments,
                    logFile: directory.appendingPathComponent("\(layout.rawValue)-\(id).log"))
                started.append(Replica(id: id, port: 0, process: process))
                let log = try await process.waitForLog("affinity.port=")
                guard let range = log.range(of: "affinity.port="),
                    let port = Int(log[range.upperBound...].prefix(while: { $0.isNumber }))
                else { throw BenchError(.processFailed, "\(process.name) logged no usable port") }
                started[started.count - 1] = Replica(id: id, port: port, process: process)
                if redis != nil { _ = try await process.waitForLog("registered replica") }
            }
        } catch {
            for replica in started { replica.process.kill() }
            redis?.stop()
            throw error
        }
        return ReplicaSet(layout: layout, replicas: started, redis: redis)
    }

    /// Throws if a process died.
    public func checkAlive() throws(BenchError) {
        for replica in replicas where !replica.process.isRunning {
            throw BenchError(.processFailed, "\(replica.process.name) died:\n\(replica.process.logTail)")
        }
        for process in redis?.processes ?? [] where !process.isRunning {
            throw BenchError(.processFailed, "redis-server died:\n\(process.logTail)")
        }
    }

    /// Kills every process.
    public func stop() {
        for replica in replicas { replica.process.kill() }
        redis?.stop()
    }
}
