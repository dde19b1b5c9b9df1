public import AffinityPeer
public import AffinityRedis

/// The settings a replica needs to join a cluster: the shared Redis and its own peer channel.
public struct ClusterConfiguration: Sendable {
    /// How to reach Redis (`--redis-url`, `--redis-password-file`).
    public var redis: RedisConfiguration
    /// How many Redis replicas must confirm a park or an acknowledgement (`--redis-wait-replicas`,
    /// `--redis-wait-timeout`): one with Sentinel and with Redis Cluster (their failovers promote a replica,
    /// which may miss the last writes of the master), none with a single Redis.
    public var replication: RedisReplicationRequirement
    /// The prefix of every Redis key (`--redis-prefix`).
    public var keyPrefix: String = "affinity:"
    /// How long a route lives without a refresh (`--route-ttl`); routes are refreshed every third of it.
    public var routeTTL: Duration = .seconds(90)
    /// How long the registry entry of a replica lives without a heartbeat; heartbeats run every third of it.
    public var registrationTTL: Duration = .seconds(15)
    /// The port of the peer channel (`--peer-port`); 0 picks a free port.
    public var peerPort: Int = 9443
    /// The address other replicas dial (`--peer-advertise-address`).
    public var advertiseAddress: PeerAddress
    /// The replica's certificate, key and the cluster CA (`--peer-tls-cert`, `--peer-tls-key`, `--peer-tls-ca`).
    public var tlsFiles: PeerTLSFiles
    /// A name every peer certificate must hold (`--peer-tls-server-name`); nil checks the chain only.
    public var expectedServerName: String?

    /// Creates a configuration with defaults for the optional settings.
    public init(redis: RedisConfiguration, advertiseAddress: PeerAddress, tlsFiles: PeerTLSFiles) {
        self.redis = redis
        switch redis.topology {
        case .sentinel, .cluster: self.replication = RedisReplicationRequirement(replicas: 1)
        case .standalone: self.replication = .none
        }
        self.advertiseAddress = advertiseAddress
        self.tlsFiles = tlsFiles
    }
}
