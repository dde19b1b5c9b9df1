import AffinityProtocol
public import AffinityRedis
public import Logging
import NIOCore

/// The replicas' registrations in Redis (``RedisKeySchema`` `replica:{id}`: peer address and instance nonce,
/// with a TTL the ``ReplicaRegistry`` keeps alive), and the lookup of a replica's peer address for forwarding.
public struct RedisReplicaRecords: Sendable {
    /// What ``heartbeat(id:instanceNonce:ttl:)`` found.
    public enum HeartbeatResult: Sendable, Hashable {
        /// Still ours; the TTL is refreshed.
        case refreshed
        /// The registration is gone (it expired, or Redis restarted empty): register again.
        case expired
        /// Another instance registered the id: this instance has lost it and must stop serving as that replica.
        case takenOver
    }

    /// What ``register(id:peerAddress:instanceNonce:ttl:replacing:)`` found.
    public enum Registration: Sendable, Hashable {
        /// Registered (or refreshed) for this instance.
        case registered
        /// Another instance holds the id: its peer address and instance nonce.
        case taken(address: String, instanceNonce: String)
    }

    /// The Redis client the records are kept with.
    public let client: RedisClient
    /// The key names.
    public let keys: RedisKeySchema
    private let logger: Logger

    /// Creates the records on `client`.
    public init(client: RedisClient, keys: RedisKeySchema = RedisKeySchema(), logger: Logger) {
        self.client = client
        self.keys = keys
        self.logger = logger
    }

    /// Registers replica `id` with its peer address for `ttl`, unless another instance holds the id: then returns
    /// that instance's address and nonce. `replacing` is the nonce of an instance proven gone (its address
    /// answers as another instance): its registration is taken over. Registering again with the same nonce
    /// refreshes it.
    public func register(
        id: String, peerAddress: String, instanceNonce: String, ttl: Duration, replacing previousNonce: String? = nil
    ) async throws -> Registration {
        let reply = try await client.evaluate(
            RouteScripts.registerReplica, keys: [try keys.replica(id)],
            arguments: [
                RedisArgument(peerAddress), RedisArgument(instanceNonce), RedisArgument(milliseconds: ttl),
                RedisArgument(previousNonce ?? instanceNonce),
            ])
        let words = reply.array?.compactMap(\.string) ?? []
        switch (words.first, words.count) {
        case ("registered", 1):
            logger.info(
                "registered replica", metadata: ["affinity.replica": "\(id)", "affinity.peer": "\(peerAddress)"])
            return .registered
        case ("taken", 3):
            return .taken(address: words[1], instanceNonce: words[2])
        default:
            throw AffinityError.unexpectedReply("registerReplica", reply)
        }
    }

    /// Refreshes the registration of `id` for `ttl` if it still belongs to `instanceNonce`.
    public func heartbeat(id: String, instanceNonce: String, ttl: Duration) async throws -> HeartbeatResult {
        let reply = try await client.evaluate(
            RouteScripts.heartbeat, keys: [try keys.replica(id)],
            arguments: [RedisArgument(instanceNonce), RedisArgument(milliseconds: ttl)])
        switch reply.string {
        case "refreshed": return .refreshed
        case "expired": return .expired
        case "taken": return .takenOver
        default: throw AffinityError.unexpectedReply("heartbeat", reply)
        }
    }

    /// Removes the registration of `id` if it still belongs to `instanceNonce`. Returns whether it did.
    @discardableResult
    public func deregister(id: String, instanceNonce: String) async throws -> Bool {
        let reply = try await client.evaluate(
            RouteScripts.deregisterReplica, keys: [try keys.replica(id)], arguments: [RedisArgument(instanceNonce)])
        guard let deleted = reply.integer else { throw AffinityError.unexpectedReply("deregisterReplica", reply) }
        return deleted == 1
    }

    /// The peer address of replica `id`, or `nil` when it is not registered.
    public func peerAddress(of id: String) async throws -> String? {
        let reply = try await client.send(["HGET", try keys.replica(id), "address"])
        switch reply {
        case .null: return nil
        case .bulkString(let bytes): return String(buffer: bytes)
        default: throw AffinityError.unexpectedReply("lookupReplica", reply)
        }
    }
}
