import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// The pool's bookkeeping, without I/O: which connection serves which peer, with which generation of the TLS
/// material, and whether the pool still accepts forwards.
///
/// `Connection` is the pool's gRPC client in production and a plain object in the unit tests.
struct PeerConnectionTable<Connection: AnyObject> {
    /// What ``connection(for:generation:make:)`` decided.
    enum Lookup {
        /// Reuse the peer's current connection.
        case existing(Connection)
        /// A new connection was made (run it); `replaced` was made with older TLS material (close it once
        /// its in-flight forwards end).
        case created(Connection, replaced: Connection?)
        /// The pool is shut down; no connection.
        case shutDown
    }

    fileprivate struct Entry {
        let connection: Connection
        let generation: Int
    }

    private var entries: [PeerAddress: Entry] = [:]
    private(set) var isShutDown = false

    /// The peers that currently have a connection.
    var addresses: Set<PeerAddress> { Set(self.entries.keys) }

    /// The connection for `address` made with TLS material `generation`: the current one, or a new one from
    /// `make` when there is none or it was made with other material.
    mutating func connection(
        for address: PeerAddress,
        generation: Int,
        make: () throws -> Connection
    ) rethrows -> Lookup {
        if self.isShutDown { return .shutDown }
        let previous = self.entries[address]
        if let previous, previous.generation == generation {
            return .existing(previous.connection)
        }
        let connection = try make()
        self.entries[address] = Entry(connection: connection, generation: generation)
        return .created(connection, replaced: previous?.connection)
    }

    /// Removes the connection to `address` (the peer left) and returns it, to be closed by the caller.
    mutating func remove(_ address: PeerAddress) -> Connection? {
        self.entries.removeValue(forKey: address)?.connection
    }

    /// Drops `connection` after it stopped, unless another one already replaced it.
    mutating func forget(_ connection: Connection) {
        if let address = self.entries.first(where: { $0.value.connection === connection })?.key {
            self.entries.removeValue(forKey: address)
        }
    }

    /// Refuses further lookups and returns every connection (to be closed by the caller).
    mutating func shutDown() -> [Connection] {
        self.isShutDown = true
        let connections = self.entries.values.map(\.connection)
        self.entries.removeAll()
        return connections
    }
}

extension PeerConnectionTable: Sendable where Connection: Sendable {}
extension PeerConnectionTable.Lookup: Sendable where Connection: Sendable {}
extension PeerConnectionTable.Entry: Sendable where Connection: Sendable {}

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
