/// Why the peer TLS files could not be used.
public struct PeerTLSError: Error, Sendable, CustomStringConvertible {
    /// The stable classification.
    public enum Code: String, Sendable, Hashable {
        /// A file is missing or unreadable.
        case unreadableFile = "unreadable_file"
        /// The certificate file is not a PEM certificate chain.
        case invalidCertificate = "invalid_certificate"
        /// The private key file is not a PEM private key.
        case invalidPrivateKey = "invalid_private_key"
        /// The private key does not belong to the leaf certificate.
        case keyMismatch = "key_mismatch"
        /// The CA file holds no usable certificate.
        case invalidTrustRoots = "invalid_trust_roots"
    }

    /// The classification.
    public var code: Code
    /// A human-readable explanation naming the file.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error)?

    /// Creates an error.
    public init(code: Code, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// `code: message (cause: ...)`.
    public var description: String {
        if let cause = self.cause {
            return "\(self.code.rawValue): \(self.message) (cause: \(String(reflecting: cause)))"
        }
        return "\(self.code.rawValue): \(self.message)"
    }
}
