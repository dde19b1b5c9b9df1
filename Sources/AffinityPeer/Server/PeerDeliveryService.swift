import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import Metrics
import X509

/// The gRPC service behind ``PeerServer``: validates requests and hands outcomes to the handler.
struct PeerDeliveryService: Affinity_Peer_V1_PeerDelivery.SimpleServiceProtocol {
    let configuration: PeerServerConfiguration
    let handler: any PeerDeliveryHandler
    let logger: Logger
    let metrics: PeerMetrics
    /// Tells open `DeliverStream`s that the server shuts down.
    let shutdownNotices: PeerStreamShutdownNotices

    /// Why a request is refused before it reaches the handler.
    enum Refusal {
        /// Malformed (`INVALID_ARGUMENT`).
        case invalid(String)
    }

    func deliver(
        request: Affinity_Peer_V1_DeliverRequest,
        context: ServerContext
    ) async throws -> Affinity_Peer_V1_DeliverResponse {
        switch self.refusal(of: request, remote: context.remotePeer) {
        case .invalid(let problem):
            throw RPCError(code: .invalidArgument, message: problem)
        case nil:
            break
        }
        let outcome = PeerOutcome(
            id: request.id,
            key: request.key,
            variables: request.variables,
            originReplica: request.originReplica,
            legacyBroadcast: request.legacyBroadcast
        )
        let caller = Self.caller(of: context)
        let status: PeerDeliveryStatus
        do {
            status = try await self.runHandler(outcome, from: caller, cancellation: context.cancellation)
        } catch let error as RPCError {
            self.metrics.received.error.increment()
            throw error
        } catch {
            self.metrics.received.error.increment()
            self.logger.debug(
                "peer delivery handler failed",
                metadata: [
                    "affinity.key": "\(request.key)", "affinity.outcome": "\(request.id)", "error.message": "\(error)",
                ]
            )
            throw RPCError(
                code: .unavailable,
                message: "the owner could neither deliver nor park the outcome",
                metadata: Self.handlerFailureMetadata,
                cause: error
            )
        }
        var response = Affinity_Peer_V1_DeliverResponse()
        response.replica = self.configuration.replicaID
        self.handled(request, with: status, into: &response)
        return response
    }

    /// Puts a handler's status into `response`, records and logs it (`Deliver` and `DeliverStream` alike).
    func handled(
        _ request: Affinity_Peer_V1_DeliverRequest, with status: PeerDeliveryStatus,
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

    /// Validates a request's envelope, records and logs a refusal.
    func refusal(of request: Affinity_Peer_V1_DeliverRequest, remote: @autoclosure () -> String) -> Refusal? {
        if let problem = PeerRequestValidation.problem(
            id: request.id, key: request.key, variables: request.variables, originReplica: request.originReplica)
        {
            self.metrics.received.invalid.increment()
            self.logger.debug(
                "invalid peer delivery refused",
                metadata: ["affinity.peer.remote": "\(remote())", "error.message": "\(problem)"]
            )
            return .invalid(problem)
        }
        return nil
    }

    /// Runs the handler in a child task that is cancelled when gRPC cancels the RPC (the caller's deadline
    /// passed or it went away): gRPC signals that through the handle, not by cancelling the handler's task.
    private func runHandler(
        _ outcome: PeerOutcome,
        from caller: PeerCaller,
        cancellation: ServerContext.RPCCancellationHandle
    ) async throws -> PeerDeliveryStatus {
        let handler = self.handler
        return try await withThrowingTaskGroup(of: PeerDeliveryStatus?.self) { group in
            group.addTask { try await handler.deliver(outcome, from: caller) }
            group.addTask {
                try await cancellation.cancelled
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let status = first else {
                throw RPCError(code: .cancelled, message: "the caller cancelled the forward or its deadline passed")
            }
            return status
        }
    }

    func ping(
        request: Affinity_Peer_V1_PingRequest, context: ServerContext
    ) async throws -> Affinity_Peer_V1_PingResponse {
        var response = Affinity_Peer_V1_PingResponse()
        response.replica = self.configuration.replicaID
        response.instance = self.configuration.instanceID
        return response
    }

    /// Trailing metadata that tells the caller the request reached the handler (not a transport failure).
    static let handlerFailureMetadata: Metadata = [Self.errorSourceKey: "handler"]
    /// The trailer naming where a failure came from.
    static let errorSourceKey = "affinity-peer-error-source"

    static func caller(of context: ServerContext) -> PeerCaller {
        let transport = context.transportSpecific as? HTTP2ServerTransport.Posix.Context
        let subject = transport?.peerCertificate.map { String(describing: $0.subject) }
        return PeerCaller(remoteAddress: context.remotePeer, certificateSubject: subject)
    }
}

extension PeerDeliveryStatus {
    /// The name used in metrics and logs.
    var metricName: String {
        switch self {
        case .delivered: "delivered"
        case .parked: "parked"
        case .notOwner: "not_owner"
        }
    }
}
