/// An error of the Redis layer: a stable ``Code``, a human message and the underlying cause.
///
/// ```swift
/// do { _ = try await client.send(["GET", "k"]) } catch let error as RedisError where error.code == .timeout { ... }
/// ```
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// The stable category of a ``RedisError``.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case connection, timeout, server, `protocol`, tls, configuration, replication
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// Not connected, connection refused, closed or recycled while the command was outstanding.
        public static let connection = Code(.connection)
        /// The command got no reply within its deadline.
        public static let timeout = Code(.timeout)
        /// Redis answered with an error reply; the message is the server's text (`NOSCRIPT ...`, `WRONGPASS ...`).
        public static let server = Code(.server)
        /// The bytes from the server are not valid RESP, or a reply has an unexpected shape.
        public static let `protocol` = Code(.protocol)
        /// The TLS handshake failed (untrusted certificate, wrong host name, bad files).
        public static let tls = Code(.tls)
        /// The URL or another setting is invalid.
        public static let configuration = Code(.configuration)
        /// A write was not confirmed by the required number of replicas (`WAIT`) in time: it may be lost in a
        /// failover.
        public static let replication = Code(.replication)

        /// The stable text of the code, e.g. `timeout`.
        public var description: String { value.rawValue }
    }

    /// The category of the error.
    public var code: Code
    /// What happened, for people.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error)?

    /// Creates an error.
    public init(code: Code, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// `redis.<code>: message (cause: ...)`.
    public var description: String {
        var text = "redis.\(code): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }

    /// For ``Code/server`` errors: the first word of the server's text (`NOSCRIPT`, `WRONGPASS`, `ERR`).
    public var serverErrorPrefix: Substring? {
        guard code == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }
}
