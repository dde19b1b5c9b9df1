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
