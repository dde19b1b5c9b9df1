/// Who sent a forwarded outcome, as the peer server saw it: the TLS client identity and the socket address.
public struct PeerCaller: Sendable, Hashable {
    /// The remote socket address, in gRPC's notation (for example `ipv4:10.0.0.7:51234`).
    public var remoteAddress: String
    /// The subject of the client certificate the caller presented (already verified against the CA), if the
    /// transport exposed it.
    public var certificateSubject: String?

    /// Creates a caller description.
    public init(remoteAddress: String, certificateSubject: String?) {
        self.remoteAddress = remoteAddress
        self.certificateSubject = certificateSubject
    }
}
