/// The one error type of the affinity service: a stable ``Code`` that maps 1:1 to the protocol's
/// `error` frame codes (docs/PROTOCOL.md), a human-readable message, the `ref` (outcome id or key)
/// the error is about where it is known, and the underlying cause.
public struct AffinityError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable error code, as sent in `{"type":"error","code":...}`.
    ///
    /// A struct rather than an enum so that a client can carry codes added by a newer server.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The wire form, e.g. `bad_request`.
        public let rawValue: String

        /// Wraps a wire code.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// The message is malformed: invalid JSON, not an object, a missing or invalid field,
        /// a message out of sequence (before `hello`, a second `hello`), or a binary frame.
        public static let badRequest = Code(rawValue: "bad_request")
        /// Missing or wrong credentials.
        public static let unauthorized = Code(rawValue: "unauthorized")
        /// The credentials are valid but not for this operation (a client delivering, a worker
        /// subscribing), or a configured limit such as subscriptions per connection was reached.
        public static let forbidden = Code(rawValue: "forbidden")
        /// The message is larger than the configured maximum, or the store is full.
        public static let tooLarge = Code(rawValue: "too_large")
        /// The `type` of the message is not one this endpoint understands.
        public static let unknownType = Code(rawValue: "unknown_type")
        /// The service cannot take the request now (draining, store unreachable); retry elsewhere or later.
        public static let unavailable = Code(rawValue: "unavailable")
        /// An operation did not finish in time.
        public static let timeout = Code(rawValue: "timeout")
        /// An outcome id was reused with another payload for the same key: the first payload is kept
        /// and the second refused (HTTP 409). The same id with the same payload is idempotent.
        public static let conflict = Code(rawValue: "conflict")
        /// An unexpected failure inside the service.
        public static let `internal` = Code(rawValue: "internal")

        /// The wire form.
        public var description: String { rawValue }
    }

    /// The stable code.
    public var code: Code
    /// A human-readable explanation; not meant to be parsed.
    public var message: String
    /// The outcome id or process instance key the error is about, when known.
    public var ref: String?
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(code: Code, message: String, ref: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.ref = ref
        self.cause = cause
    }

    /// Returns the same error with `ref` set (keeps an existing one).
    public func withRef(_ ref: String?) -> AffinityError {
        var copy = self
        if copy.ref == nil { copy.ref = ref }
        return copy
    }

    /// `code: message`, plus the cause when there is one.
    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}

extension AffinityError {
    /// Shorthand for a `bad_request` error.
    public static func badRequest(_ message: String, ref: String? = nil) -> AffinityError {
        AffinityError(code: .badRequest, message: message, ref: ref)
    }
}
