import AffinityProtocol
import AffinityServer
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A configuration mistake, reported as one line.
struct ConfigurationError: Error {
    let message: String
}

extension AffinityServerCommand {
    /// Merges flags, `AFFINITY_*` variables and defaults into a validated configuration.
    func resolve() throws(ConfigurationError) -> (AffinityConfiguration, Logger.Level, json: Bool) {
        func value(_ flag: String?, _ variable: String) -> (String, String)? {
            if let flag {
                return (flag, "--" + variable.dropFirst("AFFINITY_".count).lowercased().replacingUnderscores())
            }
            if let raw = getenv(variable) { return (String(cString: raw), variable) }
            return nil
        }
        func integer(_ flag: String?, _ variable: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int?
        {
            guard let (text, source) = value(flag, variable) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(
                    message:
                        "\(source) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
            }
            return number
        }
        func duration(
            _ flag: String?, _ variable: String, allowZero: Bool = false
        ) throws(ConfigurationError) -> Duration? {
            guard let (text, source) = value(flag, variable) else { return nil }
            guard let parsed = DurationParser.parse(text), allowZero || parsed > .zero else {
                throw ConfigurationError(
                    message:
                        "\(source) must be a positive duration such as 500ms, 10s, 5m, 1h or plain seconds, got \"\(text)\""
                )
            }
            return parsed
        }
        func file(_ flag: String?, _ variable: String) throws(ConfigurationError) -> String? {
            guard let (path, source) = value(flag, variable) else { return nil }
            guard !path.isEmpty else { throw ConfigurationError(message: "\(source) must not be empty") }
            guard access(path, R_OK) == 0 else {
                throw ConfigurationError(message: "\(source): cannot read \(path)")
            }
            return path
        }

        var configuration = AffinityConfiguration()
        if let (host, source) = value(host, "AFFINITY_HOST") {
            guard !host.isEmpty else { throw ConfigurationError(message: "\(source) must not be empty") }
            configuration.host = host
        }
        if let port = try integer(port, "AFFINITY_PORT", 0...65535) { configuration.port = port }
        configuration.metricsPort = try integer(metricsPort, "AFFINITY_METRICS_PORT", 0...65535)
        if let (replica, source) = value(replicaId, "AFFINITY_REPLICA_ID") {
            guard !replica.isEmpty, replica.utf8.count <= 256 else {
                throw ConfigurationError(message: "\(source) must be 1 to 256 bytes long")
            }
            configuration.replicaID = replica
        }
        configuration.clientTokenFile = try file(clientTokenFile, "AFFINITY_CLIENT_TOKEN_FILE")
        configuration.workerTokenFile = try file(workerTokenFile, "AFFINITY_WORKER_TOKEN_FILE")
        if let ttl = try duration(parkTtl, "AFFINITY_PARK_TTL") { configuration.parkTTL = ttl }
        if let timeout = try duration(ackTimeout, "AFFINITY_ACK_TIMEOUT") { configuration.ackTimeout = timeout }
        if let bytes = try integer(maxMessageBytes, "AFFINITY_MAX_MESSAGE_BYTES", 1024...(256 << 20)) {
            configuration.maxMessageBytes = bytes
        }
        if let count = try integer(maxSubscriptions, "AFFINITY_MAX_SUBSCRIPTIONS", 1...1_000_000) {
            configuration.maxSubscriptions = count
        }
        if let bytes = try integer(maxOutboundBytes, "AFFINITY_MAX_OUTBOUND_BYTES", 1024...(1 << 34)) {
            configuration.maxOutboundBytes = bytes
        }
        if let interval = try duration(pingInterval, "AFFINITY_PING_INTERVAL") { configuration.pingInterval = interval }
        if let timeout = try duration(drainTimeout, "AFFINITY_DRAIN_TIMEOUT") { configuration.drainTimeout = timeout }
        var level = Logger.Level.info
        if let (text, source) = value(logLevel, "AFFINITY_LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                throw ConfigurationError(
                    message: "\(source) must be trace, debug, info, notice, warning, error or critical, got \"\(text)\""
                )
            }
            level = parsed
        }
        var json = false
        if let (text, source) = value(logFormat, "AFFINITY_LOG_FORMAT") {
            switch text.lowercased() {
            case "text": json = false
            case "json": json = true
            default: throw ConfigurationError(message: "\(source) must be text or json, got \"\(text)\"")
            }
        }
        // token files must hold at least one token: read them once now for a clear message
        for path in [configuration.clientTokenFile, configuration.workerTokenFile].compactMap({ $0 }) {
            do {
                _ = try TokenFile(path: path)
            } catch {
                throw ConfigurationError(message: error.message)
            }
        }
        return (configuration, level, json)
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
