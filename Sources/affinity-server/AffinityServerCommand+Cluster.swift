import AffinityCluster
import AffinityPeer
import AffinityRedis
import AffinityServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension AffinityServerCommand {
    /// The cluster settings, or nil without `--redis-url` (embedded store, one replica).
    func resolveCluster(replicaID: String) throws(ConfigurationError) -> ClusterConfiguration? {
        func value(_ flag: String?, _ variable: String, _ name: String) -> (String, String)? {
            if let flag { return (flag, "--" + name) }
            if let raw = getenv(variable) { return (String(cString: raw), variable) }
            return nil
        }
        func file(_ flag: String?, _ variable: String, _ name: String) throws(ConfigurationError) -> String? {
            guard let (path, source) = value(flag, variable, name) else { return nil }
            guard !path.isEmpty else { throw ConfigurationError(message: "\(source) must not be empty") }
            guard access(path, R_OK) == 0 else { throw ConfigurationError(message: "\(source): cannot read \(path)") }
            return path
        }

        guard let (url, urlSource) = value(redisUrl, "AFFINITY_REDIS_URL", "redis-url"), !url.isEmpty else {
            return nil
        }
        var redis: RedisConfiguration
        do {
            redis = try RedisConfiguration(url: url)
        } catch {
            throw ConfigurationError(message: "\(urlSource): \(error.message)")
        }
        if let path = try file(redisPasswordFile, "AFFINITY_REDIS_PASSWORD_FILE", "redis-password-file") {
            redis.passwordFile = path
        }
        var peerPort = 9443
        if let (text, source) = value(self.peerPort, "AFFINITY_PEER_PORT", "peer-port") {
            guard let number = Int(text), (1...65535).contains(number) else {
                throw ConfigurationError(message: "\(source) must be an integer in 1...65535, got \"\(text)\"")
            }
            peerPort = number
        }
        let advertise: PeerAddress
        if let (text, source) = value(
            peerAdvertiseAddress, "AFFINITY_PEER_ADVERTISE_ADDRESS", "peer-advertise-address")
        {
            guard let address = PeerAddress(parsing: text) else {
                throw ConfigurationError(
                    message: "\(source) must be host:port or [ipv6]:port with a port in 1...65535, got \"\(text)\"")
            }
            advertise = address
        } else {
            advertise = PeerAddress(host: HostName.current, port: peerPort)
        }
        let certificate = try file(peerTlsCert, "AFFINITY_PEER_TLS_CERT", "peer-tls-cert")
        let key = try file(peerTlsKey, "AFFINITY_PEER_TLS_KEY", "peer-tls-key")
        let authority = try file(peerTlsCa, "AFFINITY_PEER_TLS_CA", "peer-tls-ca")
        guard let certificate, let key, let authority else {
            throw ConfigurationError(
                message:
                    "cluster mode (--redis-url) needs the peer TLS files: --peer-tls-cert, --peer-tls-key and --peer-tls-ca"
            )
        }
        var cluster = ClusterConfiguration(
            redis: redis, advertiseAddress: advertise,
            tlsFiles: PeerTLSFiles(certificatePath: certificate, privateKeyPath: key, trustRootsPath: authority))
        cluster.peerPort = peerPort
        if let (prefix, source) = value(redisPrefix, "AFFINITY_REDIS_PREFIX", "redis-prefix") {
            guard !prefix.contains("{"), !prefix.contains("}") else {
                throw ConfigurationError(message: "\(source) must not contain braces (they mark hash tags)")
            }
            cluster.keyPrefix = prefix
        }
        if let (text, source) = value(routeTtl, "AFFINITY_ROUTE_TTL", "route-ttl") {
            guard let ttl = DurationParser.parse(text), ttl >= .seconds(1) else {
                throw ConfigurationError(message: "\(source) must be a duration of at least 1s, got \"\(text)\"")
            }
            cluster.routeTTL = ttl
        }
        if let (name, source) = value(peerTlsServerName, "AFFINITY_PEER_TLS_SERVER_NAME", "peer-tls-server-name") {
            guard !name.isEmpty else { throw ConfigurationError(message: "\(source) must not be empty") }
            cluster.expectedServerName = name
        }
        return cluster
    }
}
