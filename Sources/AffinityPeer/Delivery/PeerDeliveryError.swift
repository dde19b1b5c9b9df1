import AffinityProtocol
import GRPCCore
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a forward to a peer failed, classified so that the caller can decide what to do next.
///
/// | code | meaning | what the caller usually does |
/// |---|---|---|
/// | `unresolved` | the replica's address is unknown: it is not registered (it left), or the directory cannot be read | park if the route still points at the replica, else forward to the new owner |
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
        /// The replica's peer address is unknown (not registered, or the directory could not be read).
        case unresolved
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

extension PeerDeliveryError {
    /// Classifies an error that ended a `DeliverStream` (or a `Ping`): transport causes (TLS, refused,
    /// unreachable) first, then the RPC status.
    static func classifying(_ error: any Error, address: PeerAddress) -> PeerDeliveryError {
        var transport: (code: Code, cause: any Error)?
        var status: RPCError?
        var pending: [any Error] = [error]
        var visited = 0
        while let next = pending.popLast(), visited < 32 {
            visited += 1
            if let rpc = next as? RPCError {
                status = status ?? rpc
                if let cause = rpc.cause { pending.append(cause) }
            } else if let runtime = next as? RuntimeError {
                if let cause = runtime.cause { pending.append(cause) }
            } else if let connection = next as? NIOConnectionError {
                pending.append(contentsOf: connection.connectionErrors.map(\.error))
                if let dns = connection.dnsAError { pending.append(dns) }
            } else if let code = Self.transportCode(of: next) {
                // TLS beats refused beats unreachable: it says the most about what to fix.
                if transport == nil || Self.rank(code) > Self.rank(transport!.code) {
                    transport = (code, next)
                }
            }
        }

        if let transport {
            let what: String
            switch transport.code {
            case .tls: what = "the TLS handshake with \(address) failed"
            case .refused: what = "\(address) refused the connection"
            default: what = "\(address) is unreachable"
            }
            return PeerDeliveryError(code: transport.code, message: what, cause: error)
        }
        guard let status else {
            return PeerDeliveryError(code: .failed, message: "the forward to \(address) failed", cause: error)
        }
        switch status.code {
        case .deadlineExceeded:
            return PeerDeliveryError(
                code: .deadlineExceeded, message: "\(address) did not answer before the deadline", cause: error)
        case .invalidArgument, .failedPrecondition, .resourceExhausted, .unimplemented, .permissionDenied,
            .unauthenticated, .outOfRange:
            return PeerDeliveryError(
                code: .rejected, message: "\(address) rejected the forward: \(status.message)", cause: error)
        case .unavailable:
            return PeerDeliveryError(
                code: .unreachable, message: "\(address) is unavailable: \(status.message)", cause: error)
        case .cancelled:
            return PeerDeliveryError(code: .shutDown, message: "the forward to \(address) was cancelled", cause: error)
        default:
            return PeerDeliveryError(
                code: .failed, message: "the forward to \(address) failed: \(status.message)", cause: error)
        }
    }

    /// The status in a `DeliverStream` answer, or the error its failure or an unknown status stands for.
    static func status(
        of response: Affinity_Peer_V1_DeliverResponse,
        address: PeerAddress
    ) throws(PeerDeliveryError) -> ForwardedDeliveryStatus {
        switch response.failure {
        case .none:
            break
        case .invalidArgument:
            throw PeerDeliveryError(
                code: .rejected, message: "\(address) rejected the forward: \(response.failureMessage)")
        case .handler:
            throw PeerDeliveryError(
                code: .failed, message: "\(address) could neither deliver nor park: \(response.failureMessage)")
        case .timeout:
            throw PeerDeliveryError(
                code: .deadlineExceeded,
                message: "\(address) did not answer before the deadline: \(response.failureMessage)")
        case .UNRECOGNIZED(let value):
            throw PeerDeliveryError(
                code: .failed,
                message: "\(address) answered with an unknown failure \(value): \(response.failureMessage)")
        }
        switch response.status {
        case .delivered:
            return .delivered
        case .parked:
            return .parked
        case .notOwner:
            return .notOwner(owner: response.ownerReplica.isEmpty ? nil : response.ownerReplica)
        case .unspecified, .UNRECOGNIZED:
            throw PeerDeliveryError(
                code: .failed,
                message: "the peer at \(address) answered with an unknown status \(response.status.rawValue)"
            )
        }
    }

    private static func transportCode(of error: any Error) -> Code? {
        switch error {
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError, is PeerCertificateRejection:
            return .tls
        case let io as IOError:
            return io.errnoCode == ECONNREFUSED ? .refused : .unreachable
        case let channel as ChannelError:
            if case .connectTimeout = channel { return .unreachable }
            return nil
        default:
            return nil
        }
    }

    private static func rank(_ code: Code) -> Int {
        switch code {
        case .tls: 3
        case .refused: 2
        default: 1
        }
    }
}
