/// Why the benchmark itself failed (not a missed target): a stable code, a message and the cause.
public struct BenchError: Error, CustomStringConvertible, Sendable {
    /// Stable error codes.
    public enum Code: String, Sendable {
        /// An invalid option value.
        case invalidArgument = "invalid_argument"
        /// An executable or tool was not found.
        case missingExecutable = "missing_executable"
        /// A server or Redis process did not start or died.
        case processFailed = "process_failed"
        /// A connection failed or was closed by the server.
        case connection
        /// The server answered something the protocol does not allow here.
        case protocolViolation = "protocol_violation"
        /// An outcome was lost, duplicated, or reached the wrong client.
        case correctness
        /// The load did not finish in time.
        case stalled
    }

    /// The stable code.
    public let code: Code
    /// A human message.
    public let message: String
    /// The underlying error, if any.
    public let cause: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// `code: message (cause)`.
    public var description: String {
        if let cause { return "\(code.rawValue): \(message) (\(cause))" }
        return "\(code.rawValue): \(message)"
    }
}

/// The text of an error that is not `Sendable`, kept as the cause of a ``BenchError``.
public struct ErrorText: Error, Sendable, CustomStringConvertible {
    /// The text.
    public let description: String
    /// Wraps `description`.
    public init(_ description: String) { self.description = description }
}
