import GRPCCore

/// An error from the Zeebe client: a stable code, the gateway's (or client's) message and the cause.
///
/// Codes that come from the gateway keep the gRPC status code in ``rpcCode``; client-side
/// failures (bad configuration, variables that are not a JSON object, a failing token endpoint)
/// have no gRPC code.
public struct ZeebeError: Error, Sendable, CustomStringConvertible {
    /// A stable error code. Gateway errors map 1:1 to gRPC status codes.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The stable code string, e.g. `NOT_FOUND`.
        public var rawValue: String
        /// Wraps a raw code string.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The code string.
        public var description: String { rawValue }

        /// gRPC CANCELLED.
        public static let cancelled = Code(rawValue: "CANCELLED")
        /// gRPC UNKNOWN.
        public static let unknown = Code(rawValue: "UNKNOWN")
        /// gRPC INVALID_ARGUMENT: a malformed request, e.g. variables that are not a JSON object.
        public static let invalidArgument = Code(rawValue: "INVALID_ARGUMENT")
        /// gRPC DEADLINE_EXCEEDED.
        public static let deadlineExceeded = Code(rawValue: "DEADLINE_EXCEEDED")
        /// gRPC NOT_FOUND: no such job, process or instance (e.g. a late CompleteJob after a job timeout).
        public static let notFound = Code(rawValue: "NOT_FOUND")
        /// gRPC ALREADY_EXISTS: a message with the same id is still buffered.
        public static let alreadyExists = Code(rawValue: "ALREADY_EXISTS")
        /// gRPC PERMISSION_DENIED.
        public static let permissionDenied = Code(rawValue: "PERMISSION_DENIED")
        /// gRPC RESOURCE_EXHAUSTED: back-pressure. Retryable.
        public static let resourceExhausted = Code(rawValue: "RESOURCE_EXHAUSTED")
        /// gRPC FAILED_PRECONDITION: the command is rejected in the current state.
        public static let failedPrecondition = Code(rawValue: "FAILED_PRECONDITION")
        /// gRPC ABORTED.
        public static let aborted = Code(rawValue: "ABORTED")
        /// gRPC OUT_OF_RANGE.
        public static let outOfRange = Code(rawValue: "OUT_OF_RANGE")
        /// gRPC UNIMPLEMENTED.
        public static let unimplemented = Code(rawValue: "UNIMPLEMENTED")
        /// gRPC INTERNAL.
        public static let internalError = Code(rawValue: "INTERNAL")
        /// gRPC UNAVAILABLE: the gateway or a partition is not reachable. Retryable.
        public static let unavailable = Code(rawValue: "UNAVAILABLE")
        /// gRPC DATA_LOSS.
        public static let dataLoss = Code(rawValue: "DATA_LOSS")
        /// gRPC UNAUTHENTICATED: missing or invalid token.
        public static let unauthenticated = Code(rawValue: "UNAUTHENTICATED")
        /// Client side: the configuration is invalid (bad address, unreadable CA file, ...).
        public static let invalidConfiguration = Code(rawValue: "INVALID_CONFIGURATION")
        /// Client side: variables could not be encoded or decoded as a JSON object.
        public static let invalidVariables = Code(rawValue: "INVALID_VARIABLES")
        /// Client side: the OAuth token endpoint failed or answered with something unusable.
        public static let authenticationFailed = Code(rawValue: "AUTHENTICATION_FAILED")
    }

    /// The stable code.
    public var code: Code
    /// The gRPC status code when the error came from the gateway or the transport.
    public var rpcCode: RPCError.Code?
    /// The gateway's message (or the client's own description).
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error)?

    /// Creates an error.
    public init(code: Code, message: String, rpcCode: RPCError.Code? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.rpcCode = rpcCode
        self.cause = cause
    }

    /// Wraps a gRPC error, keeping its status code and message.
    public init(_ error: RPCError) {
        self.init(code: Code(error.code), message: error.message, rpcCode: error.code, cause: error)
    }

    /// Whether retrying the same request later may succeed: RESOURCE_EXHAUSTED (back-pressure) and
    /// UNAVAILABLE. The client retries these on its own only for idempotent calls.
    public var isRetryable: Bool {
        code == .resourceExhausted || code == .unavailable
    }

    /// `CODE: message`.
    public var description: String {
        "\(code.rawValue): \(message)"
    }

    /// Converts any error thrown by a gRPC call into a ``ZeebeError``.
    static func from(_ error: any Error) -> ZeebeError {
        switch error {
        case let error as ZeebeError: return error
        case let error as RPCError: return ZeebeError(error)
        case is CancellationError: return ZeebeError(code: .cancelled, message: "the call was cancelled", cause: error)
        default: return ZeebeError(code: .unknown, message: String(describing: error), cause: error)
        }
    }
}

extension ZeebeError.Code {
    /// Maps a gRPC status code to the stable code with the gRPC name.
    public init(_ code: RPCError.Code) {
        switch code {
        case .cancelled: self = .cancelled
        case .invalidArgument: self = .invalidArgument
        case .deadlineExceeded: self = .deadlineExceeded
        case .notFound: self = .notFound
        case .alreadyExists: self = .alreadyExists
        case .permissionDenied: self = .permissionDenied
        case .resourceExhausted: self = .resourceExhausted
        case .failedPrecondition: self = .failedPrecondition
        case .aborted: self = .aborted
        case .outOfRange: self = .outOfRange
        case .unimplemented: self = .unimplemented
        case .internalError: self = .internalError
        case .unavailable: self = .unavailable
        case .dataLoss: self = .dataLoss
        case .unauthenticated: self = .unauthenticated
        default: self = .unknown
        }
    }
}
