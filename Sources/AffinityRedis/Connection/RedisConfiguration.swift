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

    /// Host name or IP address of the server.
    public var host: String
    /// TCP port.
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

    /// Parses `redis://[[user]:password@]host[:port][/db]` or `rediss://...` (TLS, verification on).
    ///
    /// User and password may be percent-encoded; an IPv6 host goes in brackets (`redis://[::1]:6379`). The
    /// port defaults to 6379.
    public init(url: String) throws(RedisError) {
        self.init()
        let scheme: Substring
        let rest: Substring
        if let range = url.firstRange(of: "://") {
            scheme = url[..<range.lowerBound]
            rest = url[range.upperBound...]
        } else {
            throw Self.invalid(url, "it has no scheme (expected redis:// or rediss://)")
        }
        switch scheme.lowercased() {
        case "redis": tls = nil
        case "rediss": tls = TLS()
        default: throw Self.invalid(url, "the scheme must be redis or rediss")
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

        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Self.invalid(url, "unclosed [ in the host") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw Self.invalid(url, "unexpected text after the IPv6 address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
        guard !host.isEmpty else { throw Self.invalid(url, "the host is missing") }
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw Self.invalid(url, "the port must be a number from 1 to 65535")
            }
            port = value
        }
        if !path.isEmpty {
            guard let value = Int(path), value >= 0 else {
                throw Self.invalid(url, "the path must be a database number")
            }
            database = value
        }
    }

    /// `host:port`, for logs and error messages (never the credentials).
    public var endpoint: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
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
