import Logging
import NIOCore

extension RedisRouteStore {
    /// Registers replica `id` with its peer address for `ttl`. Throws ``RouteStoreError/Code/replicaIdInUse``
    /// when another live instance (another `instanceNonce`) holds the id; registering again with the same
    /// nonce refreshes it.
    public func registerReplica(id: String, peerAddress: String, instanceNonce: String, ttl: Duration) async throws {
        switch try await register(id: id, peerAddress: peerAddress, instanceNonce: instanceNonce, ttl: ttl) {
        case .registered:
            return
        case .taken(let address, _):
            throw RouteStoreError(
                code: .replicaIdInUse,
                message: "replica id '\(id)' is already registered by another live instance (peer address \(address)); "
                    + "choose another --replica-id or stop the other instance")
        }
    }

    /// Registers replica `id` with its peer address for `ttl`, unless another instance holds the id: then returns
    /// that instance's address and nonce. `replacing` is the nonce of an instance proven gone (its address
    /// answers as another instance): its registration is taken over.
    public func register(
        id: String, peerAddress: String, instanceNonce: String, ttl: Duration, replacing previousNonce: String? = nil
    ) async throws -> ReplicaRegistration {
        let reply = try await client.evaluate(
            RouteScripts.registerReplica, keys: [try replicaKey(id)],
            arguments: [
                RedisArgument(peerAddress), RedisArgument(instanceNonce), milliseconds(ttl),
                RedisArgument(previousNonce ?? instanceNonce),
            ])
        let words = textWords(reply)
        switch words.first {
        case "registered":
            logger.info(
                "registered replica", metadata: ["affinity.replica": "\(id)", "affinity.peer": "\(peerAddress)"])
            return .registered
        case "taken" where words.count == 3:
            return .taken(address: words[1], instanceNonce: words[2])
        default:
            throw unexpected("registerReplica", reply)
        }
    }

    /// Refreshes the registration of `id` for `ttl` if it still belongs to `instanceNonce`.
    public func heartbeat(id: String, instanceNonce: String, ttl: Duration) async throws -> HeartbeatResult {
        let reply = try await client.evaluate(
            RouteScripts.heartbeat, keys: [try replicaKey(id)],
            arguments: [RedisArgument(instanceNonce), milliseconds(ttl)])
        switch reply.string {
        case "refreshed": return .refreshed
        case "expired": return .expired
        case "taken": return .takenOver
        default: throw unexpected("heartbeat", reply)
        }
    }

    /// Removes the registration of `id` if it still belongs to `instanceNonce`. Returns whether it did.
    @discardableResult
    public func deregisterReplica(id: String, instanceNonce: String) async throws -> Bool {
        let reply = try await client.evaluate(
            RouteScripts.deregisterReplica, keys: [try replicaKey(id)], arguments: [RedisArgument(instanceNonce)])
        guard let deleted = reply.integer else { throw unexpected("deregisterReplica", reply) }
        return deleted == 1
    }

    /// The peer address of replica `id`, or `nil` when it is not registered.
    public func lookupReplica(id: String) async throws -> String? {
        let reply = try await client.send(["HGET", try replicaKey(id), "address"])
        switch reply {
        case .null: return nil
        case .bulkString(let bytes): return String(buffer: bytes)
        default: throw unexpected("lookupReplica", reply)
        }
    }
}
