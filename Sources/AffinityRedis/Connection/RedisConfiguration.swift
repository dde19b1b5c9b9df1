/// Where and how to connect to Redis.
///
/// ```swift
/// var configuration = try RedisConfiguration(url: "rediss://affinity:secret@redis.internal:6380/2")
/// configuration.tls?.caFile = "/etc/redis-tls/ca.crt"
/// configuration.passwordFile = "/var/run/secrets/redis/password"
/// ```
public struct RedisConfiguration: Sendable {
    /// TLS settings for `rediss://` connections (swift-nio-ssl).
    public struct TLS: Sendable, Hashable {
        /// PEM file of the CA certificates to trust; `nil` trusts the system's roots.
        public var caFile: String?
        /// PEM client certificate chain, for servers that require client certificates (`tls-auth-clients yes`).
        public var certificateFile: String?
        /// PEM private key of the client certificate.
        public var keyFile: String?
        /// The name sent as SNI and checked against the server certificate; `nil` uses the host (an IP
        /// address host is checked against the certificate's IP entries and sends no SNI).
        public var serverName: String?
        /// Whether the server certificate is verified (chain and name). On by default; turn it off only for
        /// local experiments.
        public var verifyCertificate: Bool

        /// Creates TLS settings; verification is on.
        public init(
            caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
            serverName: String? = nil, verifyCertificate: Bool = true
        ) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.serverName = serverName
            self.verifyCertificate = verifyCertificate
        }
    }

    /// Which servers the client talks to: one server, a Sentinel-managed master or a Redis Cluster.
    public var topology: RedisTopology
    /// Host name or IP address of the server (``RedisTopology/standalone``; the first listed host otherwise).
    public var host: String
    /// TCP port (``RedisTopology/standalone``; the first listed host's otherwise).
    public var port: Int
    /// ACL user name (`AUTH user password`); `nil` for the default user.
    public var username: String?
    /// Password (`AUTH`); `nil` when the server needs none. ``passwordFile`` takes precedence.
    public var password: String?
    /// A file holding the password (a Kubernetes Secret mount); read at every connection attempt so a rotated
    /// secret is picked up. Surrounding white space and the trailing newline are ignored.
    public var passwordFile: String?
    /// The database number (`SELECT`), 0 by default.
    public var database: Int
    /// TLS settings; `nil` for plain TCP.
    public var tls: TLS?
    /// How long the TCP connect may take, and then how long TLS plus the `AUTH`/`SELECT` handshake may take.
    public var connectTimeout: Duration
    /// The default deadline of one command.
    public var commandTimeout: Duration
    /// How often outstanding commands are checked against their deadlines.
    public var deadlineCheckInterval: Duration
    /// Reconnect back-off.
    public var reconnect: RedisReconnectBackoff.Configuration
    /// The largest reply accepted, in bytes.
    public var maximumReplyBytes: Int

    /// Creates a configuration for `host:port` with defaults (no auth, database 0, plain TCP, 5 s connect
    /// timeout, 2 s command timeout).
    public init(host: String = "127.0.0.1", port: Int = 6379) {
        self.topology = .standalone
        self.host = host
        self.port = port
        self.username = nil
        self.password = nil
        self.passwordFile = nil
        self.database = 0
        self.tls = nil
        self.connectTimeout = .seconds(5)
        self.commandTimeout = .seconds(2)
        self.deadlineCheckInterval = .milliseconds(50)
        self.reconnect = RedisReconnectBackoff.Configuration()
        self.maximumReplyBytes = 512 * 1024 * 1024
    }

    /// Parses a Redis URL (TLS verification on for the `rediss` forms):
    ///
    /// - `redis://[[user]:password@]host[:port][/db]`, `rediss://...`: one server (port 6379 by default);
    /// - `redis-sentinel://[[user]:password@]sentinel1[:port][,sentinel2[:port]...][/db]#masterName`,
    ///   `rediss-sentinel://...`: a master managed by Sentinel (sentinel port 26379 by default; the credentials
    ///   are the data nodes'; with `rediss-sentinel` both the sentinels and the data nodes speak TLS);
    /// - `redis-cluster://[[user]:password@]seed1[:port][,seed2[:port]...]`, `rediss-cluster://...`: a Redis
    ///   Cluster through its seed nodes (no database: a cluster has only database 0).
    ///
    /// User and password may be percent-encoded; an IPv6 host goes in brackets (`redis://[::1]:6379`).
    public init(url: String) throws(RedisError) {
        self.init()
        guard let schemeRange = url.firstRange(of: "://") else {
            throw Self.invalid(
                url, "it has no scheme (expected redis://, rediss://, redis-sentinel:// or redis-cluster://)")
        }
        let scheme = url[..<schemeRange.lowerBound].lowercased()
        let kind: Kind
        switch scheme {
        case "redis": kind = .standalone
        case "rediss": (kind, tls) = (.standalone, TLS())
        case "redis-sentinel": kind = .sentinel
        case "rediss-sentinel": (kind, tls) = (.sentinel, TLS())
        case "redis-cluster": kind = .cluster
        case "rediss-cluster": (kind, tls) = (.cluster, TLS())
        default:
            throw Self.invalid(
                url,
                "the scheme must be redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster")
        }
        var rest = url[schemeRange.upperBound...]
        var fragment: Substring?
        if let hash = rest.firstIndex(of: "#") {
            fragment = rest[rest.index(after: hash)...]
            rest = rest[..<hash]
        }
        let withoutQuery = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let authorityEnd = withoutQuery.firstIndex(of: "/") ?? withoutQuery.endIndex
        var authority = withoutQuery[..<authorityEnd]
        let path = withoutQuery[authorityEnd...].drop(while: { $0 == "/" })

        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userInfo[..<colon], url)
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], url)
            } else {
                // `redis://secret@host` is the password alone, as redis-cli reads it.
                password = try Self.percentDecoded(userInfo, url)
            }
        }

        let defaultPort = kind == .sentinel ? 26379 : 6379
        var endpoints: [RedisEndpoint] = []
        for part in authority.split(separator: ",", omittingEmptySubsequences: false) {
            endpoints.append(try Self.endpoint(part, defaultPort: defaultPort, url))
        }
        if kind == .standalone && endpoints.count > 1 {
            throw Self.invalid(url, "only redis-sentinel:// and redis-cluster:// take several hosts")
        }
        host = endpoints[0].host
        port = endpoints[0].port
        if !path.isEmpty {
            guard let value = Int(path), value >= 0 else {
                throw Self.invalid(url, "the path must be a database number")
            }
            guard kind != .cluster || value == 0 else {
                throw Self.invalid(url, "a Redis Cluster has only database 0")
            }
            database = value
        }
        switch kind {
        case .standalone:
            guard fragment == nil else { throw Self.invalid(url, "only redis-sentinel:// takes a #master name") }
            topology = .standalone
        case .sentinel:
            guard let fragment, !fragment.isEmpty else {
                throw Self.invalid(url, "it needs the master name after # (redis-sentinel://host:26379/0#mymaster)")
            }
            topology = .sentinel(
                RedisSentinelSettings(masterName: try Self.percentDecoded(fragment, url), sentinels: endpoints))
        case .cluster:
            guard fragment == nil else { throw Self.invalid(url, "only redis-sentinel:// takes a #master name") }
            topology = .cluster(seeds: endpoints)
        }
    }

    private enum Kind { case standalone, sentinel, cluster }

    /// Parses `host[:port]` or `[ipv6][:port]`.
    private static func endpoint(
        _ text: Substring, defaultPort: Int, _ url: String
    ) throws(RedisError) -> RedisEndpoint {
        var host: String
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw Self.invalid(url, "unclosed [ in the host") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw Self.invalid(url, "unexpected text after the IPv6 address")
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        } else {
            host = String(text)
        }
        guard !host.isEmpty else { throw Self.invalid(url, "a host is missing") }
        var port = defaultPort
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw Self.invalid(url, "the port must be a number from 1 to 65535")
            }
            port = value
        }
        return RedisEndpoint(host: host, port: port)
    }

    /// Where the client connects, for logs and error messages (never the credentials): `host:port`; with
    /// Sentinel `sentinel master mymaster via h1:26379,h2:26379`; for a cluster `cluster via h1:6379,...`.
    public var endpoint: String {
        switch topology {
        case .standalone:
            return RedisEndpoint(host: host, port: port).description
        case .sentinel(let sentinel):
            return "sentinel master \(sentinel.masterName) via "
                + sentinel.sentinels.map(\.description).joined(separator: ",")
        case .cluster(let seeds):
            return "cluster via " + seeds.map(\.description).joined(separator: ",")
        }
    }

    private static func invalid(_ url: String, _ reason: String) -> RedisError {
        RedisError(code: .configuration, message: "invalid Redis URL \(redacted(url)): \(reason)")
    }

    /// The URL with any password replaced by `***`.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://"), let at = url.lastIndex(of: "@"), at > schemeEnd.upperBound
        else { return url }
        let userInfo = url[schemeEnd.upperBound..<at]
        let user = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return url[..<schemeEnd.upperBound] + user + ":***" + url[at...]
    }

    private static func percentDecoded(_ text: Substring, _ url: String) throws(RedisError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw invalid(url, "bad percent-encoding in the credentials")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
