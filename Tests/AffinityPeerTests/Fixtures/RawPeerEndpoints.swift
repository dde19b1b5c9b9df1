import AffinityTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Synchronization
import Testing

@testable import AffinityPeer

/// Runs a plain gRPC client that presents `identity` (mutual TLS, trusting the CA at `caPath`), to send
/// what the pool never sends: broken messages, ids the server must refuse.
func withRawPeerClient<Result: Sendable>(
    identity: TestPKI.Identity,
    caPath: String,
    address: PeerAddress,
    _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result
) async throws -> Result {
    let transport = try HTTP2ClientTransport.Posix(
        target: .ipv4(address: address.host, port: address.port),
        transportSecurity: .mTLS(
            certificateChain: [.file(path: identity.certificatePath, format: .pem)],
            privateKey: .file(path: identity.keyPath, format: .pem)
        ) { tls in
            tls.trustRoots = .certificates([.file(path: caPath, format: .pem)])
            tls.serverCertificateVerification = .noHostnameVerification
        }
    )
    return try await withGRPCClient(transport: transport) { client in
        try await body(client)
    }
}

/// Sends raw bytes as a message: lets a test put a message on the stream that is not a `DeliverRequest`.
struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }
}

/// Runs a gRPC server with mutual TLS (the replica identity `identity`, callers checked against the CA at
/// `caPath`) serving `service` instead of the real peer service, for behaviours a real replica never shows.
func withScriptedPeerServer<Result: Sendable>(
    identity: TestPKI.Identity,
    caPath: String,
    service: some RegistrableRPCService,
    _ body: (PeerAddress) async throws -> Result
) async throws -> Result {
    let transport = HTTP2ServerTransport.Posix(
        address: .ipv4(host: "127.0.0.1", port: 0),
        transportSecurity: .mTLS(
            certificateChain: [.file(path: identity.certificatePath, format: .pem)],
            privateKey: .file(path: identity.keyPath, format: .pem)
        ) { tls in
            tls.trustRoots = .certificates([.file(path: caPath, format: .pem)])
            tls.clientCertificateVerification = .noHostnameVerification
        }
    )
    return try await withGRPCServer(transport: transport, services: [service]) { server in
        let address = try await server.transport.listeningAddress
        let port = try #require(address.ipv4?.port)
        return try await body(PeerAddress(host: "127.0.0.1", port: port))
    }
}

/// A `DeliverStream` that first answers every request with a stray answer (an id the caller never sent) and
/// a refusal of request id 0, and only then with the real answer (`parked`).
/// A peer that answers every stream request after `delay`, whatever its `timeout_millis` says (as a connection
/// that stalled delivers an answer late): `parked` for an id that starts with `parked`, else `delivered`; an id
/// that starts with `fast` is answered at once.
struct LateAnswersService: Affinity_Peer_V1_PeerDelivery.SimpleServiceProtocol {
    let delay: Duration

    func deliver(
        request: Affinity_Peer_V1_DeliverRequest, context: ServerContext
    ) async throws -> Affinity_Peer_V1_DeliverResponse {
        throw RPCError(code: .internalError, message: "this test server answers DeliverStream only")
    }

    func deliverStream(
        request: RPCAsyncSequence<Affinity_Peer_V1_DeliverRequest, any Error>,
        response: RPCWriter<Affinity_Peer_V1_DeliverResponse>,
        context: ServerContext
    ) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for try await message in request {
                group.addTask {
                    if !message.id.hasPrefix("fast") { try await Task.sleep(for: delay) }
                    var answer = Affinity_Peer_V1_DeliverResponse()
                    answer.requestID = message.requestID
                    answer.status = message.id.hasPrefix("parked") ? .parked : .delivered
                    try await response.write(answer)
                }
            }
        }
    }

    func ping(
        request: Affinity_Peer_V1_PingRequest, context: ServerContext
    ) async throws -> Affinity_Peer_V1_PingResponse {
        Affinity_Peer_V1_PingResponse()
    }
}

struct StrayAnswersService: Affinity_Peer_V1_PeerDelivery.SimpleServiceProtocol {
    func deliver(
        request: Affinity_Peer_V1_DeliverRequest, context: ServerContext
    ) async throws -> Affinity_Peer_V1_DeliverResponse {
        throw RPCError(code: .internalError, message: "this test server answers DeliverStream only")
    }

    func deliverStream(
        request: RPCAsyncSequence<Affinity_Peer_V1_DeliverRequest, any Error>,
        response: RPCWriter<Affinity_Peer_V1_DeliverResponse>,
        context: ServerContext
    ) async throws {
        for try await message in request {
            var stray = Affinity_Peer_V1_DeliverResponse()
            stray.requestID = message.requestID &+ 1_000_000
            stray.status = .delivered
            var refusal = Affinity_Peer_V1_DeliverResponse()
            refusal.requestID = 0
            refusal.failure = .invalidArgument
            refusal.failureMessage = "request_id must not be 0"
            var answer = Affinity_Peer_V1_DeliverResponse()
            answer.requestID = message.requestID
            answer.status = .parked
            try await response.write(contentsOf: [stray, refusal, answer])
        }
    }

    func ping(
        request: Affinity_Peer_V1_PingRequest, context: ServerContext
    ) async throws -> Affinity_Peer_V1_PingResponse {
        var answer = Affinity_Peer_V1_PingResponse()
        answer.replica = "stray-answers"
        return answer
    }
}

/// Records the order in which a handler finished its deliveries.
final class CompletionLog: Sendable {
    private let ids = Mutex<[String]>([])

    /// Appends `id`.
    func record(_ id: String) {
        self.ids.withLock { $0.append(id) }
    }

    /// The ids in completion order.
    var order: [String] {
        self.ids.withLock { $0 }
    }
}
