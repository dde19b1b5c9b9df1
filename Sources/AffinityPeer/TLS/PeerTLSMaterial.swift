import Foundation
import NIOSSL
import SwiftASN1
import X509

/// One consistent, parsed generation of the peer TLS files: the replica's own identity and the trust roots.
///
/// Loading checks everything a handshake would need, so a half-written rotation (a new certificate with the
/// old key) is refused here instead of breaking every later handshake.
struct PeerTLSMaterial: Sendable {
    /// The raw bytes of the three files, to detect changes by content (Kubernetes swaps a symlink, so
    /// modification times are not reliable).
    struct Contents: Sendable, Hashable {
        var certificate: [UInt8]
        var privateKey: [UInt8]
        var trustRoots: [UInt8]
    }

    let contents: Contents
    let certificateChain: [NIOSSLCertificate]
    let privateKey: NIOSSLPrivateKey
    let trustRoots: [Certificate]
    /// The subject of the leaf, for logs.
    let subject: String
    /// When the leaf certificate expires, for logs.
    let notValidAfter: Date

    /// Reads the three files.
    static func readContents(of files: PeerTLSFiles) throws(PeerTLSError) -> Contents {
        func read(_ path: String, _ what: String) throws(PeerTLSError) -> [UInt8] {
            do {
                return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw PeerTLSError(code: .unreadableFile, message: "cannot read the \(what) file \(path)", cause: error)
            }
        }
        return Contents(
            certificate: try read(files.certificatePath, "certificate"),
            privateKey: try read(files.privateKeyPath, "private key"),
            trustRoots: try read(files.trustRootsPath, "CA")
        )
    }

    /// Parses and cross-checks file contents.
    init(contents: Contents) throws(PeerTLSError) {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(contents.certificate)
        } catch {
            throw PeerTLSError(code: .invalidCertificate, message: "the certificate file is not PEM", cause: error)
        }
        guard let leaf = chain.first else {
            throw PeerTLSError(code: .invalidCertificate, message: "the certificate file holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: contents.privateKey, format: .pem)
        } catch {
            throw PeerTLSError(code: .invalidPrivateKey, message: "the private key file is not a PEM key", cause: error)
        }
        let roots = try Self.parseTrustRoots(contents.trustRoots)
        let parsedLeaf: Certificate
        do {
            parsedLeaf = try Certificate(derEncoded: try leaf.toDERBytes())
        } catch {
            throw PeerTLSError(
                code: .invalidCertificate, message: "the leaf certificate cannot be parsed", cause: error)
        }
        // BoringSSL refuses a key that does not match the leaf when both are loaded into a context.
        do {
            _ = try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: chain.map { .certificate($0) },
                    privateKey: .privateKey(key)
                )
            )
        } catch {
            throw PeerTLSError(
                code: .keyMismatch,
                message: "the private key does not belong to the certificate \(parsedLeaf.subject)",
                cause: error
            )
        }
        self.contents = contents
        self.certificateChain = chain
        self.privateKey = key
        self.trustRoots = roots
        self.subject = String(describing: parsedLeaf.subject)
        self.notValidAfter = parsedLeaf.notValidAfter
    }

    private static func parseTrustRoots(_ bytes: [UInt8]) throws(PeerTLSError) -> [Certificate] {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw PeerTLSError(code: .invalidTrustRoots, message: "the CA file is not PEM", cause: error)
        }
        var roots: [Certificate] = []
        for document in documents where document.discriminator == "CERTIFICATE" {
            do {
                roots.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw PeerTLSError(
                    code: .invalidTrustRoots, message: "the CA file holds a broken certificate", cause: error)
            }
        }
        guard !roots.isEmpty else {
            throw PeerTLSError(code: .invalidTrustRoots, message: "the CA file holds no certificate")
        }
        return roots
    }
}

/// Where a replica's peer-channel TLS material lives: PEM files, as a cert-manager Secret mounts them
/// (`tls.crt`, `tls.key`, `ca.crt`).
public struct PeerTLSFiles: Sendable, Hashable {
    /// The replica's certificate chain (leaf first, then any intermediates), PEM (`--peer-tls-cert`).
    public var certificatePath: String
    /// The private key of the leaf certificate, PEM (`--peer-tls-key`).
    public var privateKeyPath: String
    /// The cluster CA bundle: one or more PEM certificates; the only trust roots of the peer channel
    /// (`--peer-tls-ca`). During a CA rotation it holds the old and the new CA.
    public var trustRootsPath: String

    /// Names the three files.
    public init(certificatePath: String, privateKeyPath: String, trustRootsPath: String) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.trustRootsPath = trustRootsPath
    }
}

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
