import Foundation

/// How a ``ZeebeClient`` reaches the gateway: address, TLS, OAuth credentials, timeouts and retries.
///
/// Build it explicitly, or read it from the Camunda environment variables with
/// ``fromEnvironment(_:)``.
///
/// ```swift
/// var configuration = ZeebeClientConfiguration(host: "zeebe.internal", port: 26500)
/// configuration.transportSecurity = .tls(caCertificatePath: "/etc/zeebe/ca.pem")
/// ```
public struct ZeebeClientConfiguration: Sendable, Hashable {
    /// How the connection to the gateway is secured.
    public enum TransportSecurity: Sendable, Hashable {
        /// Plaintext HTTP/2 (self-managed gateways on port 26500 by default).
        case plaintext
        /// TLS, verifying the gateway against the system roots or, when given, the PEM CA file.
        case tls(caCertificatePath: String?)
    }

    /// The gateway's host name or IP address.
    public var host: String
    /// The gateway's gRPC port.
    public var port: Int
    /// Plaintext or TLS.
    public var transportSecurity: TransportSecurity
    /// Overrides the `:authority` / TLS server name (`ZEEBE_OVERRIDE_AUTHORITY`).
    public var overrideAuthority: String?
    /// OAuth2 client credentials; `nil` sends no token.
    public var credentials: OAuthCredentials?
    /// HTTP Basic credentials (Camunda 8.8+ self-managed with Basic authentication), sent as
    /// `authorization: Basic ...` on every call; used only without ``credentials``.
    public var basicAuth: BasicAuthCredentials?
    /// The gRPC deadline of unary calls that have no request timeout of their own.
    public var defaultCallTimeout: Duration
    /// Added to a request timeout (long polling, CreateProcessInstanceWithResult) to make the
    /// gRPC deadline, so that the gateway answers before the client gives up (10 s, like Java).
    public var deadlineOffset: Duration
    /// How many times an idempotent call is tried in total on RESOURCE_EXHAUSTED or UNAVAILABLE, and a
    /// create or publish call on RESOURCE_EXHAUSTED (back-pressure), within the call's deadline.
    public var maxAttempts: Int
    /// How long CompleteJob, FailJob and ThrowError are retried on RESOURCE_EXHAUSTED and UNAVAILABLE
    /// (a partition leader change takes seconds), never past the job's deadline (30 s).
    public var jobCommandRetryTimeout: Duration
    /// The tenant sent on create, publish and deploy calls without a tenant of their own, and activated
    /// by workers without tenant ids: `<default>`, the tenant of a cluster without multi-tenancy, as the
    /// Java client sends it (`CAMUNDA_DEFAULT_TENANT_ID`).
    public var defaultTenantId: String
    /// The largest response message accepted from the gateway (5 MB, the official clients' default
    /// rather than gRPC's 4 MiB; `ZEEBE_MAX_MESSAGE_SIZE`). ActivateJobs answers carry variables, so a
    /// batch of large jobs needs room.
    public var maxInboundMessageSize: Int
    /// The back-off between those attempts.
    public var retryBackoff: ExponentialBackoff
    /// The HTTP/2 keep-alive ping interval while calls are open (45 s, like the Java and Go clients;
    /// `ZEEBE_KEEP_ALIVE`); nil sends no pings. Keep it at or above the gateway's
    /// `minKeepAliveInterval` (30 s by default), or the gateway closes the connection.
    public var keepAlive: Duration?

    /// The tenant of a cluster without multi-tenancy.
    public static let defaultTenantId = "<default>"

    /// Creates a configuration; defaults: plaintext, no credentials, 20 s call timeout,
    /// 10 s deadline offset, 5 attempts with the standard back-off, tenant `<default>`.
    public init(
        host: String = "127.0.0.1",
        port: Int = 26500,
        transportSecurity: TransportSecurity = .plaintext,
        credentials: OAuthCredentials? = nil
    ) {
        self.host = host
        self.port = port
        self.transportSecurity = transportSecurity
        self.overrideAuthority = nil
        self.credentials = credentials
        self.basicAuth = nil
        self.defaultCallTimeout = .seconds(20)
        self.deadlineOffset = .seconds(10)
        self.maxAttempts = 5
        self.jobCommandRetryTimeout = .seconds(30)
        self.defaultTenantId = Self.defaultTenantId
        self.maxInboundMessageSize = 5 * 1024 * 1024
        self.retryBackoff = .standard
        self.keepAlive = .seconds(45)
    }
}

/// OAuth2 client-credentials settings for the gateway's token endpoint.
public struct OAuthCredentials: Sendable, Hashable {
    /// The client id.
    public var clientId: String
    /// The client secret.
    public var clientSecret: String
    /// The token endpoint, e.g. `https://login.cloud.camunda.io/oauth/token`.
    public var authorizationServerURL: String
    /// The `audience` form field, e.g. `zeebe.camunda.io`.
    public var audience: String?
    /// The optional `scope` form field.
    public var scope: String?
    /// The optional `resource` form field.
    public var resource: String?
    /// How long before expiry a cached token is replaced (60 s by default).
    public var refreshLeeway: Duration
    /// The timeout of one token request (10 s by default).
    public var requestTimeout: Duration
    /// A PEM CA file the token endpoint's certificate is checked against instead of the system roots
    /// (`CAMUNDA_CUSTOM_ROOT_CERT_PATH`: from the environment the same file as the gateway's).
    public var caCertificatePath: String?

    /// The Camunda SaaS token endpoint.
    public static let saasAuthorizationServerURL = "https://login.cloud.camunda.io/oauth/token"

    /// Creates credentials.
    public init(
        clientId: String,
        clientSecret: String,
        authorizationServerURL: String = OAuthCredentials.saasAuthorizationServerURL,
        audience: String? = nil,
        scope: String? = nil,
        resource: String? = nil
    ) {
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.authorizationServerURL = authorizationServerURL
        self.audience = audience
        self.scope = scope
        self.resource = resource
        self.refreshLeeway = .seconds(60)
        self.requestTimeout = .seconds(10)
        self.caCertificatePath = nil
    }
}

/// A username and password for HTTP Basic authentication at the gateway.
public struct BasicAuthCredentials: Sendable, Hashable {
    /// The username.
    public var username: String
    /// The password.
    public var password: String

    /// Creates Basic credentials.
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// The `authorization` header value: `Basic <base64(username:password)>`.
    public var authorizationHeader: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}
