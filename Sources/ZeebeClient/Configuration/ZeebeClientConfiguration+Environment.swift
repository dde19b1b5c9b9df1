import Foundation

extension ZeebeClientConfiguration {
    /// Reads the configuration from the environment variables the official Camunda clients use (the
    /// Java and Go clients' and `@camunda8/sdk`'s names; docs/ZEEBE.md has the table).
    ///
    /// - Address: `CAMUNDA_GRPC_ADDRESS` > `ZEEBE_GRPC_ADDRESS` > `ZEEBE_ADDRESS` >
    ///   `ZEEBE_HOST`/`ZEEBE_PORT` > `CAMUNDA_CLUSTER_ID` (+ `CAMUNDA_CLUSTER_REGION`, SaaS) >
    ///   `127.0.0.1:26500`. An address may carry a scheme: `http://` is plaintext,
    ///   `https://` and `grpcs://` are TLS.
    /// - TLS: on unless `ZEEBE_INSECURE_CONNECTION=true`, `CAMUNDA_SECURE_CONNECTION=false` or the scheme
    ///   is `http://`; custom roots from `CAMUNDA_CA_CERTIFICATE_PATH` > `ZEEBE_CA_CERTIFICATE_PATH` >
    ///   `CAMUNDA_CUSTOM_ROOT_CERT_PATH` (also trusted for the token endpoint);
    ///   `CAMUNDA_OVERRIDE_AUTHORITY` / `ZEEBE_OVERRIDE_AUTHORITY`.
    /// - `CAMUNDA_AUTH_STRATEGY`: `NONE`, `OAUTH` or `BASIC`; unset: OAuth when a client id or secret is
    ///   set, Basic when a Basic username or password is set.
    /// - Basic authentication (Camunda 8.8+): `CAMUNDA_BASIC_AUTH_USERNAME` and `CAMUNDA_BASIC_AUTH_PASSWORD`.
    /// - Keep-alive: `CAMUNDA_KEEP_ALIVE` / `ZEEBE_KEEP_ALIVE` in milliseconds (default 45 s).
    /// - Largest inbound message: `CAMUNDA_MAX_MESSAGE_SIZE` / `ZEEBE_MAX_MESSAGE_SIZE`, bytes or `5MB`
    ///   (default 5 MB).
    /// - Default tenant: `CAMUNDA_DEFAULT_TENANT_ID` > `ZEEBE_DEFAULT_TENANT_ID` > `CAMUNDA_TENANT_ID`
    ///   (default `<default>`).
    /// - OAuth, `CAMUNDA_*` before `ZEEBE_*`:
    ///   `CAMUNDA_CLIENT_ID`/`ZEEBE_CLIENT_ID`, `CAMUNDA_CLIENT_SECRET`/`ZEEBE_CLIENT_SECRET`,
    ///   `CAMUNDA_AUTHORIZATION_SERVER_URL`/`CAMUNDA_OAUTH_URL`/`ZEEBE_AUTHORIZATION_SERVER_URL`,
    ///   `CAMUNDA_TOKEN_AUDIENCE`/`ZEEBE_TOKEN_AUDIENCE` (default: `zeebe.camunda.io` for a SaaS cluster
    ///   id, else the gateway host), `CAMUNDA_TOKEN_SCOPE`/`ZEEBE_TOKEN_SCOPE` (not
    ///   `CAMUNDA_CREDENTIALS_SCOPES`: that lists the components a SaaS credential is valid for),
    ///   `CAMUNDA_TOKEN_RESOURCE`, `CAMUNDA_AUTH_REQUEST_TIMEOUT`/`ZEEBE_AUTH_REQUEST_TIMEOUT`
    ///   (milliseconds, default 10 s).
    ///
    /// - Parameter environment: the variables; the process environment by default.
    /// - Throws: ``ZeebeError`` with code `INVALID_CONFIGURATION` for a malformed address, port, size or
    ///   strategy, or when only one of client id and secret is set.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ZeebeClientConfiguration {
        func value(_ names: String...) -> String? {
            for name in names {
                if let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty {
                    return value
                }
            }
            return nil
        }

        var address: GatewayAddress
        var defaultAudience: String?
        if let raw = value("CAMUNDA_GRPC_ADDRESS", "ZEEBE_GRPC_ADDRESS", "ZEEBE_ADDRESS") {
            address = try GatewayAddress(parsing: raw)
        } else if let host = value("ZEEBE_HOST") {
            address = GatewayAddress(host: host, port: 26500, scheme: nil)
            if let port = value("ZEEBE_PORT") {
                guard let parsed = Int(port), (1...65535).contains(parsed) else {
                    throw ZeebeError(code: .invalidConfiguration, message: "ZEEBE_PORT '\(port)' is not a port")
                }
                address.port = parsed
            }
        } else if let clusterId = value("CAMUNDA_CLUSTER_ID") {
            let region = value("CAMUNDA_CLUSTER_REGION") ?? "bru-2"
            address = GatewayAddress(host: "\(clusterId).\(region).zeebe.camunda.io", port: 443, scheme: "grpcs")
            defaultAudience = Self.saasAudience
        } else {
            address = GatewayAddress(host: "127.0.0.1", port: 26500, scheme: nil)
        }

        var configuration = ZeebeClientConfiguration(host: address.host, port: address.port)
        let insecure = value("ZEEBE_INSECURE_CONNECTION", "CAMUNDA_INSECURE_CONNECTION").map(Self.isTrue) ?? false
        let secure = value("CAMUNDA_SECURE_CONNECTION").map(Self.isTrue) ?? true
        let caPath = value("CAMUNDA_CA_CERTIFICATE_PATH", "ZEEBE_CA_CERTIFICATE_PATH", "CAMUNDA_CUSTOM_ROOT_CERT_PATH")
        if insecure || !secure || address.scheme == "http" {
            configuration.transportSecurity = .plaintext
        } else {
            configuration.transportSecurity = .tls(caCertificatePath: caPath)
        }
        if let text = value("CAMUNDA_MAX_MESSAGE_SIZE", "ZEEBE_MAX_MESSAGE_SIZE") {
            configuration.maxInboundMessageSize = try Self.byteCount(text, variable: "ZEEBE_MAX_MESSAGE_SIZE")
        }
        if let tenant = value("CAMUNDA_DEFAULT_TENANT_ID", "ZEEBE_DEFAULT_TENANT_ID", "CAMUNDA_TENANT_ID") {
            configuration.defaultTenantId = tenant
        }
        let strategy = try value("CAMUNDA_AUTH_STRATEGY").map { text -> AuthStrategy in
            guard let strategy = AuthStrategy(rawValue: text.uppercased()) else {
                throw ZeebeError(
                    code: .invalidConfiguration,
                    message: "CAMUNDA_AUTH_STRATEGY '\(text)' must be NONE, OAUTH or BASIC")
            }
            return strategy
        }
        configuration.overrideAuthority = value("CAMUNDA_OVERRIDE_AUTHORITY", "ZEEBE_OVERRIDE_AUTHORITY")
        if let text = value("CAMUNDA_KEEP_ALIVE", "ZEEBE_KEEP_ALIVE") {
            configuration.keepAlive = try Self.milliseconds(text, variable: "ZEEBE_KEEP_ALIVE")
        }

        let basicUser = strategy == .disabled || strategy == .oauth ? nil : value("CAMUNDA_BASIC_AUTH_USERNAME")
        let basicPassword = strategy == .disabled || strategy == .oauth ? nil : value("CAMUNDA_BASIC_AUTH_PASSWORD")
        switch (basicUser, basicPassword) {
        case (nil, nil) where strategy == .basic:
            throw ZeebeError(
                code: .invalidConfiguration,
                message: "CAMUNDA_AUTH_STRATEGY=BASIC needs CAMUNDA_BASIC_AUTH_USERNAME and CAMUNDA_BASIC_AUTH_PASSWORD"
            )
        case (nil, nil):
            break
        case (let username?, let password?):
            configuration.basicAuth = BasicAuthCredentials(username: username, password: password)
        default:
            throw ZeebeError(
                code: .invalidConfiguration,
                message: "Basic authentication needs both CAMUNDA_BASIC_AUTH_USERNAME and CAMUNDA_BASIC_AUTH_PASSWORD")
        }

        let oauthOff = strategy == .disabled || strategy == .basic
        let clientId = oauthOff ? nil : value("CAMUNDA_CLIENT_ID", "ZEEBE_CLIENT_ID")
        let clientSecret = oauthOff ? nil : value("CAMUNDA_CLIENT_SECRET", "ZEEBE_CLIENT_SECRET")
        switch (clientId, clientSecret) {
        case (nil, nil) where strategy == .oauth:
            throw ZeebeError(
                code: .invalidConfiguration,
                message:
                    "CAMUNDA_AUTH_STRATEGY=OAUTH needs a client id and secret (CAMUNDA_/ZEEBE_CLIENT_ID and _SECRET)")
        case (nil, nil):
            break
        case (let id?, let secret?):
            configuration.credentials = OAuthCredentials(
                clientId: id,
                clientSecret: secret,
                authorizationServerURL: value(
                    "CAMUNDA_AUTHORIZATION_SERVER_URL",
                    "CAMUNDA_OAUTH_URL",
                    "ZEEBE_AUTHORIZATION_SERVER_URL"
                ) ?? OAuthCredentials.saasAuthorizationServerURL,
                audience: value("CAMUNDA_TOKEN_AUDIENCE", "ZEEBE_TOKEN_AUDIENCE") ?? defaultAudience ?? address.host,
                scope: value("CAMUNDA_TOKEN_SCOPE", "ZEEBE_TOKEN_SCOPE"),
                resource: value("CAMUNDA_TOKEN_RESOURCE")
            )
            configuration.credentials?.caCertificatePath = caPath
            if let text = value("CAMUNDA_AUTH_REQUEST_TIMEOUT", "ZEEBE_AUTH_REQUEST_TIMEOUT") {
                configuration.credentials?.requestTimeout = try Self.milliseconds(
                    text, variable: "ZEEBE_AUTH_REQUEST_TIMEOUT")
            }
        default:
            throw ZeebeError(
                code: .invalidConfiguration,
                message: "OAuth needs both a client id and a client secret (CAMUNDA_/ZEEBE_CLIENT_ID and _SECRET)"
            )
        }
        if configuration.credentials != nil, configuration.basicAuth != nil {
            throw ZeebeError(
                code: .invalidConfiguration,
                message: "set either OAuth client credentials or CAMUNDA_BASIC_AUTH_USERNAME/PASSWORD, not both")
        }
        return configuration
    }

    /// A positive duration as the official clients take it: plain milliseconds (`45000`), or with a
    /// unit (`500ms`, `45s`, `1m`).
    static func milliseconds(_ text: String, variable: String) throws -> Duration {
        let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000)]
        var digits = Substring(text)
        var scale: Int64 = 1
        for unit in units where text.hasSuffix(unit.suffix) {
            digits = text.dropLast(unit.suffix.count)
            scale = unit.milliseconds
            break
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let number = Int64(digits), number > 0, number <= Int64.max / 1_000_000 / scale
        else {
            throw ZeebeError(
                code: .invalidConfiguration,
                message: "\(variable) '\(text)' must be a positive number of milliseconds (or 500ms, 45s, 1m)")
        }
        return .milliseconds(number * scale)
    }

    /// The `audience` of Camunda SaaS tokens.
    static let saasAudience = "zeebe.camunda.io"

    /// `CAMUNDA_AUTH_STRATEGY` (`@camunda8/sdk`).
    enum AuthStrategy: String {
        case disabled = "NONE"
        case oauth = "OAUTH"
        case basic = "BASIC"
    }

    /// A positive size: plain bytes (`5242880`), or with a unit as the Java client takes it (`512KB`,
    /// `5MB`; 1024-based, `B`, `KB`, `MB` and the `KiB`/`MiB` forms).
    static func byteCount(_ text: String, variable: String) throws -> Int {
        let units: [(suffix: String, bytes: Int)] = [
            ("kib", 1024), ("mib", 1 << 20), ("kb", 1024), ("mb", 1 << 20), ("b", 1),
        ]
        let lowered = text.lowercased()
        var digits = Substring(lowered)
        var scale = 1
        for unit in units where lowered.hasSuffix(unit.suffix) {
            digits = lowered.dropLast(unit.suffix.count)
            scale = unit.bytes
            break
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits),
            number > 0, number <= Int(Int32.max) / scale
        else {
            throw ZeebeError(
                code: .invalidConfiguration,
                message: "\(variable) '\(text)' must be a positive number of bytes (or 512KB, 5MB)")
        }
        return number * scale
    }

    static func isTrue(_ text: String) -> Bool {
        ["true", "1", "yes", "on"].contains(text.lowercased())
    }
}

/// A gateway address as the environment gives it: `host:port`, optionally with a scheme.
struct GatewayAddress: Hashable {
    var host: String
    var port: Int
    var scheme: String?

    init(host: String, port: Int, scheme: String?) {
        self.host = host
        self.port = port
        self.scheme = scheme
    }

    init(parsing text: String) throws {
        var rest = Substring(text)
        var scheme: String?
        if let range = rest.range(of: "://") {
            scheme = rest[..<range.lowerBound].lowercased()
            rest = rest[range.upperBound...]
            guard ["http", "https", "grpc", "grpcs", "dns"].contains(scheme!) else {
                throw ZeebeError(
                    code: .invalidConfiguration, message: "unsupported scheme in gateway address '\(text)'")
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            rest = rest[..<slash]
        }
        let defaultPort = (scheme == "https" || scheme == "grpcs") ? 443 : 26500
        var host = String(rest)
        var port = defaultPort
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw ZeebeError(code: .invalidConfiguration, message: "malformed IPv6 gateway address '\(text)'")
            }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                port = try Self.port(after.dropFirst(), in: text)
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            port = try Self.port(rest[rest.index(after: colon)...], in: text)
        }
        guard !host.isEmpty else {
            throw ZeebeError(code: .invalidConfiguration, message: "gateway address '\(text)' has no host")
        }
        self.init(host: host, port: port, scheme: scheme == "grpc" ? "http" : scheme)
    }

    private static func port(_ text: Substring, in address: String) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw ZeebeError(code: .invalidConfiguration, message: "gateway address '\(address)' has an invalid port")
        }
        return port
    }
}
