/// The address of a replica's peer port, as replicas advertise it in the registry (`host:port`).
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    /// A host name, an IPv4 address or an IPv6 address (without brackets).
    public var host: String
    /// The TCP port.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[ipv6]:port`; a bare IPv6 address without brackets is refused (ambiguous).
    ///
    /// - Returns: `nil` when the text is not an address with a port in 1...65535.
    public init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65_535).contains(port) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }
}

/// Who answers at a peer address: the replica id and the instance id of its process (see
/// ``PeerServerConfiguration/instanceID``).
public struct PeerIdentity: Sendable, Hashable {
    /// The replica id.
    public var replicaID: String
    /// The instance id of the process, new at every start.
    public var instanceID: String

    /// Creates an identity.
    public init(replicaID: String, instanceID: String) {
        self.replicaID = replicaID
        self.instanceID = instanceID
    }
}

/// Where a ``PeerConnectionPool`` finds the peer address of a replica: in a cluster, the replicas'
/// registrations in Redis. The pool keeps each address it found for a short time
/// (``PeerConnectionPool/init(configuration:credentials:directory:addressLifetime:logger:metricsFactory:eventLoopGroup:lateDelivered:)``).
public protocol PeerDirectory: Sendable {
    /// The address replica `replicaID` registered, or `nil` when it is not registered (it left, or its lease
    /// ran out).
    ///
    /// - Throws: When the directory cannot be read, or holds an unusable address.
    func address(ofReplica replicaID: String) async throws -> PeerAddress?
}
