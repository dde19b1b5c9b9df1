import Crypto
import Foundation
import SwiftASN1
import X509

/// A throwaway certificate authority for TLS tests: a CA and a server certificate for
/// `localhost` and `127.0.0.1`, made at test time. Test support only.
public struct TestCertificateAuthority: Sendable {
    /// The CA certificate (PEM), to trust on the client.
    public let caCertificatePEM: String
    /// The server certificate (PEM), signed by the CA.
    public let serverCertificatePEM: String
    /// The server's private key (PEM).
    public let serverPrivateKeyPEM: String

    /// Generates a CA and a server certificate valid for one hour.
    public init() throws {
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            CommonName("zeebe-affinity test CA")
        }
        let caCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(caKey.publicKey),
            notValidBefore: now - 300,
            notValidAfter: now + 3600,
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        let serverKey = P256.Signing.PrivateKey()
        let serverName = try DistinguishedName {
            CommonName("localhost")
        }
        let serverCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(serverKey.publicKey),
            notValidBefore: now - 300,
            notValidAfter: now + 3600,
            issuer: caName,
            subject: serverName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .dnsName("localhost"),
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                ])
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        caCertificatePEM = try caCertificate.serializeAsPEM().pemString
        serverCertificatePEM = try serverCertificate.serializeAsPEM().pemString
        serverPrivateKeyPEM = serverKey.pemRepresentation
    }
}
