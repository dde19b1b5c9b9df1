import AffinityProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import Metrics
import NIOCore
import X509

/// The gRPC service behind ``PeerServer``: validates requests and hands outcomes to the handler.
struct PeerDeliveryService: Affinity_Peer_V1_PeerDelivery.SimpleServiceProtocol {
    let configuration: PeerServerConfiguration
    let handler: any PeerDeliveryHandler
    let logger: Logger
    let metrics: PeerMetrics
    /// Tells open `DeliverStream`s that the server shuts down.
    let shutdownNotices: PeerStreamShutdownNotices
    /// Where the stream requests' timeouts are scheduled.
    let timers: any EventLoopGroup

    /// What a request's envelope holds: the outcome for the handler, or why it is refused before the handler.
    enum Validation {
        /// Well-formed: the outcome to hand to the handler.
        case outcome(Outcome)
        /// Malformed (`INVALID_ARGUMENT`).
        case invalid(String)
    }

    /// Puts a handler's status into `response`, records and logs it.
    func handled(
        _ request: Affinity_Peer_V1_DeliverRequest, with status: ForwardedDeliveryStatus,
        into response: inout Affinity_Peer_V1_DeliverResponse
    ) {
        switch status {
        case .delivered:
            response.status = .delivered
        case .parked:
            response.status = .parked
        case .notOwner(let owner):
            response.status = .notOwner
            response.ownerReplica = owner ?? ""
        }
        self.metrics.received.record(status)
        self.logger.trace(
            "peer delivery handled",
            metadata: [
                "affinity.key": "\(request.key)", "affinity.outcome": "\(request.id)",
                "affinity.peer.origin": "\(request.originReplica)", "affinity.peer.status": "\(status.metricName)",
            ]
        )
    }

    /// Validates a request's envelope and makes its outcome (the variables are checked to be one JSON
    /// object, as a worker's are); records and logs a refusal.
    func validate(_ request: Affinity_Peer_V1_DeliverRequest, remote: @autoclosure () -> String) -> Validation {
        var problem = PeerRequestValidation.problem(
            id: request.id, key: request.key, variables: request.variables, originReplica: request.originReplica)
        if problem == nil, let key = ProcessInstanceKey(request.key) {
            do {
                return .outcome(try Outcome(id: request.id, key: key, variables: Array(request.variables)))
            } catch {
                problem = error.message
            }
        }
        let reason = problem ?? "key must be a positive decimal int64"
        self.metrics.received.invalid.increment()
        self.logger.debug(
            "invalid peer delivery refused",
            metadata: ["affinity.peer.remote": "\(remote())", "error.message": "\(reason)"]
        )
        return .invalid(reason)
    }

    func ping(
        request: Affinity_Peer_V1_PingRequest, context: ServerContext
    ) async throws -> Affinity_Peer_V1_PingResponse {
        var response = Affinity_Peer_V1_PingResponse()
        response.replica = self.configuration.replicaID
        response.instance = self.configuration.instanceID
        return response
    }

    static func caller(of context: ServerContext) -> PeerCaller {
        let transport = context.transportSpecific as? HTTP2ServerTransport.Posix.Context
        let subject = transport?.peerCertificate.map { String(describing: $0.subject) }
        return PeerCaller(remoteAddress: context.remotePeer, certificateSubject: subject)
    }
}

extension ForwardedDeliveryStatus {
    /// The name used in metrics and logs.
    var metricName: String {
        switch self {
        case .delivered: "delivered"
        case .parked: "parked"
        case .notOwner: "not_owner"
        }
    }
}
