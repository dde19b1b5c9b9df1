import AffinityProtocol
import AffinityServer
import AffinitySettings
import Logging

/// A configuration mistake, reported as one line.
typealias ConfigurationError = SettingsError

extension AffinityServerCommand {
    /// Merges flags, `AFFINITY_*` variables and defaults into a validated configuration.
    func resolve(
        _ settings: CommandLineSettings = CommandLineSettings()
    ) throws(ConfigurationError) -> (AffinityConfiguration, Logger.Level, json: Bool) {
        func value(_ flag: String?, _ variable: String) -> SettingValue? {
            settings.value(flag, name: Self.flagName(variable), variable: variable)
        }
        func integer(_ flag: String?, _ variable: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int?
        {
            try settings.integer(flag, name: Self.flagName(variable), variable: variable, in: range)
        }
        func duration(_ flag: String?, _ variable: String) throws(ConfigurationError) -> Duration? {
            try settings.duration(flag, name: Self.flagName(variable), variable: variable)
        }
        func file(_ flag: String?, _ variable: String) throws(ConfigurationError) -> String? {
            try settings.readableFile(flag, name: Self.flagName(variable), variable: variable)
        }

        var configuration = AffinityConfiguration()
        if let host = try settings.string(host, name: "host", variable: "AFFINITY_HOST") { configuration.host = host }
        if let port = try integer(port, "AFFINITY_PORT", 0...65535) { configuration.port = port }
        configuration.metricsPort = try integer(metricsPort, "AFFINITY_METRICS_PORT", 0...65535)
        if let replica = value(replicaId, "AFFINITY_REPLICA_ID") {
            guard !replica.text.isEmpty, replica.text.utf8.count <= 256 else {
                throw ConfigurationError("\(replica.source) must be 1 to 256 bytes long")
            }
            configuration.replicaID = replica.text
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
        if let count = try integer(maxOutcomesInFlight, "AFFINITY_MAX_OUTCOMES_IN_FLIGHT", 1...1_000_000) {
            configuration.maxOutcomesInFlight = count
        }
        if let bytes = try integer(maxInFlightBytes, "AFFINITY_MAX_IN_FLIGHT_BYTES", 1024...(1 << 40)) {
            configuration.maxInFlightBytes = bytes
        }
        if let bytes = try integer(maxParkedBytes, "AFFINITY_MAX_PARKED_BYTES", 1024...(1 << 40)) {
            configuration.maxParkedBytes = bytes
        }
        if let bytes = try integer(maxParkedBytesPerKey, "AFFINITY_MAX_PARKED_BYTES_PER_KEY", 1024...(1 << 40)) {
            configuration.maxParkedBytesPerKey = bytes
        }
        if let count = try integer(maxConnections, "AFFINITY_MAX_CONNECTIONS", 1...10_000_000) {
            configuration.maxConnections = count
        }
        if let timeout = try duration(handshakeTimeout, "AFFINITY_HANDSHAKE_TIMEOUT") {
            configuration.handshakeTimeout = timeout
        }
        if let interval = try duration(pingInterval, "AFFINITY_PING_INTERVAL") { configuration.pingInterval = interval }
        if legacyProtocol {
            configuration.legacyProtocol = true
        } else if let legacy = value(nil, "AFFINITY_LEGACY_PROTOCOL") {
            switch legacy.text.lowercased() {
            case "true", "1", "yes", "on": configuration.legacyProtocol = true
            case "false", "0", "no", "off": configuration.legacyProtocol = false
            default: throw ConfigurationError("\(legacy.source) must be true or false, got \"\(legacy.text)\"")
            }
        }
        if let timeout = try duration(drainTimeout, "AFFINITY_DRAIN_TIMEOUT") { configuration.drainTimeout = timeout }
        let level = try settings.logLevel(logLevel, name: "log-level", variable: "AFFINITY_LOG_LEVEL") ?? .info
        var json = false
        if let format = value(logFormat, "AFFINITY_LOG_FORMAT") {
            switch format.text.lowercased() {
            case "text": json = false
            case "json": json = true
            default: throw ConfigurationError("\(format.source) must be text or json, got \"\(format.text)\"")
            }
        }
        // token files must hold at least one token: read them once now for a clear message
        for path in [configuration.clientTokenFile, configuration.workerTokenFile].compactMap({ $0 }) {
            do {
                _ = try TokenFile(path: path)
            } catch {
                throw ConfigurationError(error.message)
            }
        }
        return (configuration, level, json)
    }
}

extension AffinityServerCommand {
    /// The event loop thread count asked for (`--event-loop-threads`, `AFFINITY_EVENT_LOOP_THREADS`); nil: NIO's
    /// default. Resolved before the rest because the event loop group must be sized before anything uses it.
    func resolveEventLoopThreads(
        _ settings: CommandLineSettings = CommandLineSettings()
    ) throws(ConfigurationError) -> Int? {
        try settings.integer(
            eventLoopThreads, name: Self.flagName("AFFINITY_EVENT_LOOP_THREADS"),
            variable: "AFFINITY_EVENT_LOOP_THREADS",
            in: 1...1024)
    }
}

extension AffinityServerCommand {
    /// The long flag name of an `AFFINITY_*` variable: `AFFINITY_PARK_TTL` is `park-ttl`.
    static func flagName(_ variable: String) -> String {
        String(variable.dropFirst("AFFINITY_".count).lowercased().map { $0 == "_" ? "-" : $0 })
    }
}
