import Foundation
import Logging
import Metrics
import NIOCore
import NIOSSL
import NIOTLS
import SwiftASN1
import X509

/// Verifies the certificate chain a peer presented against the current cluster CA bundle.
///
/// It replaces BoringSSL's built-in verification (through swift-nio-ssl's custom verification callback) so
/// that the trust roots can change at run time without rebuilding the TLS context. The checks are those of
/// RFC 5280 (signatures, validity period, basic constraints, key usage, name constraints), plus the extended
/// key usage of the peer's role, plus, on the client side and only when configured, the server name.
///
/// Without a configured server name the client accepts any certificate issued by the cluster CA. That is
/// safe because only the private cluster CA is trusted on this channel (never the system roots) and it
/// issues certificates only to replicas: any server that proves possession of such a certificate is a
/// replica. Replicas dial each other by pod IP, which the certificate (issued to the headless Service name)
/// does not contain.
struct PeerCertificateVerifier: Sendable {
    /// Which end of the connection the peer is.
    enum PeerRole: String, Sendable {
        /// The peer connected to us: it must be allowed TLS client authentication.
        case client
        /// We connected to the peer: it must be allowed TLS server authentication.
        case server
    }

    let trustRoots: [Certificate]
    let peerRole: PeerRole
    /// A DNS name the server's certificate must hold (client side only); `nil` for chain-only verification.
    let expectedServerName: String?

    /// Validates `presented` (leaf first, as sent by the peer).
    ///
    /// - Returns: The validated chain, leaf to root, as swift-nio-ssl certificates.
    func verify(_ presented: [NIOSSLCertificate]) async throws(PeerCertificateRejection) -> [NIOSSLCertificate] {
        guard let first = presented.first else {
            throw PeerCertificateRejection(reason: "the peer presented no certificate")
        }
        let leaf: Certificate
        var intermediates: [Certificate] = []
        do {
            leaf = try Certificate(derEncoded: try first.toDERBytes())
            for certificate in presented.dropFirst() {
                intermediates.append(try Certificate(derEncoded: try certificate.toDERBytes()))
            }
        } catch {
            throw PeerCertificateRejection(reason: "the peer's certificate cannot be parsed: \(error)")
        }

        let role = self.peerRole
        let serverName = self.expectedServerName
        var verifier = Verifier(rootCertificates: CertificateStore(self.trustRoots)) {
            RFC5280Policy()
            PeerExtendedKeyUsagePolicy(required: role == .client ? .clientAuth : .serverAuth)
            if let serverName, role == .server {
                ServerIdentityPolicy(serverHostname: serverName, serverIP: nil)
            }
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        switch result {
        case .validCertificate(let chain):
            do {
                return try chain.map { certificate in
                    var serializer = DER.Serializer()
                    try serializer.serialize(certificate)
                    return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
                }
            } catch {
                throw PeerCertificateRejection(reason: "the validated chain cannot be re-encoded: \(error)")
            }
        case .couldNotValidate(let failures):
            let reasons = failures.map { String(describing: $0.policyFailureReason) }
            let detail = reasons.isEmpty ? "no chain to a trusted CA" : reasons.joined(separator: "; ")
            throw PeerCertificateRejection(reason: "certificate \(leaf.subject) rejected: \(detail)")
        }
    }
}

/// The peer's certificate failed verification.
struct PeerCertificateRejection: Error, Sendable, CustomStringConvertible {
    var reason: String
    var description: String { self.reason }
}

/// Requires the leaf's extended key usage, when the extension is present, to allow the peer's TLS role.
///
/// A certificate without the extension may be used for any purpose (RFC 5280, 4.2.1.12), as BoringSSL does.
struct PeerExtendedKeyUsagePolicy: VerifierPolicy {
    let required: ExtendedKeyUsage.Usage

    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { [.X509ExtensionID.extendedKeyUsage] }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let usages: ExtendedKeyUsage?
        do {
            usages = try chain.leaf.extensions.extendedKeyUsage
        } catch {
            return .failsToMeetPolicy(reason: "the extended key usage extension is malformed: \(error)")
        }
        guard let usages else { return .meetsPolicy }
        if usages.contains(self.required) || usages.contains(.any) {
            return .meetsPolicy
        }
        return .failsToMeetPolicy(reason: "the extended key usage does not allow \(self.required)")
    }
}

/// Sits right behind the TLS handler of a peer connection and counts handshakes that fail (no client
/// certificate, a certificate from another CA, a peer that refused ours). Passes every event on unchanged.
final class PeerTLSHandshakeObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let failures: Counter
    private let logger: Logger
    private var handshakeCompleted = false

    init(failures: Counter, logger: Logger) {
        self.failures = failures
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            self.handshakeCompleted = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !self.handshakeCompleted {
            // Count the first failure of this connection only; the handler closes the channel next.
            self.handshakeCompleted = true
            self.failures.increment()
            self.logger.debug(
                "peer TLS handshake failed",
                metadata: [
                    "affinity.peer.remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "unknown")",
                    "error.message": "\(error)",
                ]
            )
        }
        context.fireErrorCaught(error)
    }
}
