public import AffinityProtocol

/// Why a job's outcome could not even be sent: the job does not make a valid outcome.
public struct OutcomeDeliveryError: Error, Sendable, CustomStringConvertible {
    /// The stable code (`bad_request`: invalid key or variables).
    public var code: AffinityError.Code
    /// What is wrong.
    public var message: String
    /// The underlying error.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(code: AffinityError.Code, message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// `code: message (cause)`.
    public var description: String {
        "\(code.rawValue): \(message)" + (cause.map { " (cause: \($0))" } ?? "")
    }
}
