import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// What the pool keeps per peer: the connection (a gRPC client) and the `DeliverStream` on it.
final class PeerLink: Sendable {
    /// The peer's gRPC client (one HTTP/2 connection, reconnecting by itself).
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    /// The forwards multiplexed on the connection.
    let stream: PeerDeliveryStream

    init(client: GRPCClient<HTTP2ClientTransport.Posix>, stream: PeerDeliveryStream) {
        self.client = client
        self.stream = stream
    }

    /// Closes the connection once its in-flight forwards end: the stream finishes after its open requests
    /// are answered, then the client shuts down gracefully.
    func close() {
        self.stream.retire()
        self.client.beginGracefulShutdown()
    }
}
