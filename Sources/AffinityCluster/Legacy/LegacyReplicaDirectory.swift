public import AffinityPeer
import AffinityProtocol
public import AffinityRedis
public import AffinityServer
public import CoreMetrics
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Which replicas of the cluster hold clients of the legacy protocol (`--legacy-protocol`), as a `Service`:
/// every second it records this replica in the Redis sorted set `<prefix>legacy-replicas` while it holds
/// legacy clients (score: until when the entry holds, 10 s ahead) and reads who else does. A legacy
/// broadcast goes to those replicas over the peer channel (the `PeerConnectionPool`).
///
/// ```swift
/// let directory = LegacyReplicaDirectory(client: redis, prefix: "affinity:", replicaID: "r1",
///                                        peers: pool, metricsFactory: factory, logger: logger)
/// // build the application with legacyPeers: directory, then:
/// directory.bind(to: application.localReplica)
/// ```
public final class LegacyReplicaDirectory: LegacyPeers, Service {
    private let client: RedisClient
    private let key: String
    private let replicaID: String
    private let peers: PeerConnectionPool
    private let interval: Duration
    private let lease: Duration
    private let logger: Logger
    private let known = Mutex<[String]>([])
    private let replica = Mutex<LocalReplica?>(nil)
    private let peersGauge: Meter

    /// Creates the directory of the replica `replicaID`.
    public init(
        client: RedisClient, prefix: String, replicaID: String, peers: PeerConnectionPool,
        interval: Duration = .seconds(1), lease: Duration = .seconds(10), metricsFactory: any MetricsFactory,
        logger: Logger
    ) {
        self.client = client
        self.key = prefix + "legacy-replicas"
        self.replicaID = replicaID
        self.peers = peers
        self.interval = interval
        self.lease = lease
        self.logger = logger
        self.peersGauge = Meter(label: "affinity_legacy_peer_replicas", factory: metricsFactory)
    }

    /// The replica whose legacy clients this directory announces.
    public func bind(to replica: LocalReplica) {
        self.replica.withLock { $0 = replica }
    }

    public func replicasHoldingLegacyClients() -> [String] {
        known.withLock { $0 }
    }

    public func sendToLegacyClients(_ outcome: Outcome, of replica: String) async throws(AffinityError) {
        try await peers.sendToLegacyClients(outcome, of: replica)
    }

    /// Announces and reads every `interval` until graceful shutdown, then withdraws this replica.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await refresh()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                break
            }
        }
        _ = try? await client.send(["ZREM", key, replicaID])
    }

    private func refresh() async {
        guard client.isConnected else { return }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let holds = replica.withLock { $0?.holdsLegacyClients ?? false }
        let (seconds, attoseconds) = lease.components
        let until = now + seconds * 1000 + attoseconds / 1_000_000_000_000_000
        let announce: RedisCommand = holds ? ["ZADD", key, String(until), replicaID] : ["ZREM", key, replicaID]
        let replies = await client.pipeline([
            announce, ["ZREMRANGEBYSCORE", key, "-inf", String(now)], ["ZRANGEBYSCORE", key, String(now), "+inf"],
        ])
        guard case .success(let reply) = replies.last, let members = reply.array else {
            logger.debug("reading the replicas with legacy clients failed")
            return
        }
        let others = members.compactMap(\.string).filter { $0 != replicaID }.sorted()
        known.withLock { $0 = others }
        peersGauge.set(Double(others.count))
    }
}
