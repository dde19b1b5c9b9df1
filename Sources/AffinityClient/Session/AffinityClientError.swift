public import AffinityProtocol

/// The error of every `AffinityClient` operation: a stable code (the protocol's codes, e.g. `timeout`,
/// `unavailable`, `forbidden`), a message, the process instance key or outcome id it is about, and the cause.
///
/// A front-end answers a ``AffinityError/Code/timeout`` with 202 or 504 and a status link built from
/// ``processInstanceKey``.
public struct AffinityClientError: Error, Sendable, CustomStringConvertible {
    /// The stable code; the same codes as the protocol's `error` frames.
    public var code: AffinityError.Code
    /// A human-readable explanation; not meant to be parsed.
    public var message: String
    /// The process instance the request waited for, when there is one.
    public var processInstanceKey: ProcessInstanceKey?
    /// The outcome id a publish was about, when there is one.
    public var outcomeID: String?
    /// The underlying error, e.g. the replica's ``AffinityError`` frame or a socket error.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(
        code: AffinityError.Code, message: String, processInstanceKey: ProcessInstanceKey? = nil,
        outcomeID: String? = nil, cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.processInstanceKey = processInstanceKey
        self.outcomeID = outcomeID
        self.cause = cause
    }

    /// `code: message`, with the key or id and the cause when known.
    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let processInstanceKey { text += " (process instance \(processInstanceKey))" }
        if let outcomeID { text += " (outcome \(outcomeID))" }
        if let cause { text += " (cause: \(cause))" }
        return text
    }

    static func timedOut(key: ProcessInstanceKey, after timeout: Duration) -> AffinityClientError {
        AffinityClientError(
            code: .timeout, message: "no outcome within \(timeout) for process instance \(key)",
            processInstanceKey: key)
    }

    static func stopped(key: ProcessInstanceKey? = nil, outcomeID: String? = nil) -> AffinityClientError {
        AffinityClientError(
            code: .unavailable, message: "the affinity connection is shut down", processInstanceKey: key,
            outcomeID: outcomeID)
    }
}
