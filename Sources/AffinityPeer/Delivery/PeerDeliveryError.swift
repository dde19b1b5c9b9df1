/// Why a forward to a peer failed, classified so that the caller can decide what to do next.
///
/// | code | meaning | what the caller usually does |
/// |---|---|---|
/// | `unreachable` | no TCP connection (timeout, no route, DNS) | park if the route still points at the peer, else forward to the new owner |
/// | `refused` | the peer's port refused the connection (process gone or restarting) | same as `unreachable` |
/// | `tls` | the TLS handshake failed: certificate not from the cluster CA, wrong name, expired, no client certificate | alert (misconfiguration); park |
/// | `deadlineExceeded` | the peer did not answer in time; the outcome may or may not have been delivered | park (a duplicate is dropped by the client by id) |
/// | `rejected` | the peer refused the request itself (malformed): retrying the same request is useless | answer the worker with an error |
/// | `failed` | the peer accepted the request but could neither deliver nor park it | park or forward elsewhere |
/// | `shutDown` | this replica's pool is shutting down | answer `unavailable` |
public struct PeerDeliveryError: Error, Sendable, CustomStringConvertible {
    /// The stable classification of a failure.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// No connection could be established.
        case unreachable
        /// The connection was refused (nothing listens on the peer port).
        case refused
        /// The TLS handshake failed on either side.
        case tls
        /// The deadline passed before the peer answered.
        case deadlineExceeded = "deadline_exceeded"
        /// The peer rejected the request as invalid.
        case rejected
        /// The peer could not handle the request.
        case failed
        /// The local pool is shutting down or the peer was removed.
        case shutDown = "shut_down"
    }

    /// The classification.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// The underlying error (an `RPCError`, an `IOError`, a `NIOSSLError`, ...), if any.
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
