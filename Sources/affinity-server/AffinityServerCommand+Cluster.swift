import AffinityCluster
import AffinityPeer
import AffinityRedis
import AffinityServer
import AffinitySettings

extension AffinityServerCommand {
    /// The cluster settings, or nil without `--redis-url` (embedded store, one replica).
    func resolveCluster(
        replicaID: String, _ settings: CommandLineSettings = CommandLineSettings()
    ) throws(ConfigurationError) -> ClusterConfiguration? {
        func value(_ flag: String?, _ variable: String) -> SettingValue? {
            settings.value(flag, name: Self.flagName(variable), variable: variable)
        }
        func file(_ flag: String?, _ variable: String) throws(ConfigurationError) -> String? {
            try settings.readableFile(flag, name: Self.flagName(variable), variable: variable)
        }

        guard let url = value(redisUrl, "AFFINITY_REDIS_URL"), !url.text.isEmpty else { return nil }
        var redis: RedisConfiguration
        do {
            redis = try RedisConfiguration(url: url.text)
        } catch {
            throw ConfigurationError("\(url.source): \(error.message)")
        }
        if let path = try file(redisPasswordFile, "AFFINITY_REDIS_PASSWORD_FILE") { redis.passwordFile = path }
        let sentinelPasswordFile = try file(redisSentinelPasswordFile, "AFFINITY_REDIS_SENTINEL_PASSWORD_FILE")
        switch redis.topology {
        case .standalone, .cluster:
            if sentinelPasswordFile != nil {
                throw ConfigurationError(
                    "--redis-sentinel-password-file needs a redis-sentinel:// or rediss-sentinel:// URL")
            }
        case .sentinel(var sentinel):
            sentinel.passwordFile = sentinelPasswordFile
            redis.topology = .sentinel(sentinel)
        }
        let peerPort =
            try settings.integer(self.peerPort, name: "peer-port", variable: "AFFINITY_PEER_PORT", in: 1...65535) ?? 9443
        let advertise: PeerAddress
        if let setting = value(peerAdvertiseAddress, "AFFINITY_PEER_ADVERTISE_ADDRESS") {
            guard let address = PeerAddress(parsing: setting.text) else {
                throw ConfigurationError(
                    "\(setting.source) must be host:port or [ipv6]:port with a port in 1...65535, got \"\(setting.text)\"")
            }
            advertise = address
        } else {
            advertise = PeerAddress(host: HostName.current, port: peerPort)
        }
        let certificate = try file(peerTlsCert, "AFFINITY_PEER_TLS_CERT")
        let key = try file(peerTlsKey, "AFFINITY_PEER_TLS_KEY")
        let authority = try file(peerTlsCa, "AFFINITY_PEER_TLS_CA")
        guard let certificate, let key, let authority else {
            throw ConfigurationError(
                "cluster mode (--redis-url) needs the peer TLS files: --peer-tls-cert, --peer-tls-key and --peer-tls-ca")
        }
        var cluster = ClusterConfiguration(
            redis: redis, advertiseAddress: advertise,
            tlsFiles: PeerTLSFiles(certificatePath: certificate, privateKeyPath: key, trustRootsPath: authority))
        cluster.peerPort = peerPort
        if let replicas = try settings.integer(
            redisWaitReplicas, name: "redis-wait-replicas", variable: "AFFINITY_REDIS_WAIT_REPLICAS", in: 0...16)
        {
            cluster.replication.replicas = replicas
        }
        if let timeout = try settings.duration(
            redisWaitTimeout, name: "redis-wait-timeout", variable: "AFFINITY_REDIS_WAIT_TIMEOUT",
            minimum: .milliseconds(1))
        {
            cluster.replication.timeout = timeout
        }
        if let prefix = value(redisPrefix, "AFFINITY_REDIS_PREFIX") {
            guard !prefix.text.contains("{"), !prefix.text.contains("}") else {
                throw ConfigurationError("\(prefix.source) must not contain braces (they mark hash tags)")
            }
            cluster.keyPrefix = prefix.text
        }
        if let ttl = try settings.duration(
            routeTtl, name: "route-ttl", variable: "AFFINITY_ROUTE_TTL", minimum: .seconds(1))
        {
            cluster.routeTTL = ttl
        }
        if let name = try settings.string(
            peerTlsServerName, name: "peer-tls-server-name", variable: "AFFINITY_PEER_TLS_SERVER_NAME")
        {
            cluster.expectedServerName = name
        }
        return cluster
    }
}
