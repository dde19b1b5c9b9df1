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
