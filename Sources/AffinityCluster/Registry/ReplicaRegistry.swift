public import AffinityPeer
public import AffinityRedis
public import Logging
public import ServiceLifecycle

/// Keeps this replica registered in Redis with its peer address, as a `Service`.
///
/// At start (once Redis is reachable) it registers with a random instance nonce: when the id is alive
/// elsewhere, ``run()`` throws ``ClusterStartupError`` (`replica_id_in_use`) and the replica stops. Then it
/// heartbeats every third of the TTL and at every new Redis connection; a registration that expired (Redis
/// restarted empty) is written again at once.
/// On graceful shutdown it deregisters. Place it before the application in the service group so it stops
/// after the drain.
public struct ReplicaRegistry: Service {
    private let routes: RedisRouteStore
    private let replicaID: String
    private let peerAddress: PeerAddress
    private let ttl: Duration
    private let nonce: String
    private let logger: Logger

    /// Creates the registry entry of `replicaID` at `peerAddress`, alive for `ttl` without a heartbeat.
    public init(routes: RedisRouteStore, replicaID: String, peerAddress: PeerAddress, ttl: Duration, logger: Logger) {
        self.routes = routes
        self.replicaID = replicaID
        self.peerAddress = peerAddress
        self.ttl = ttl
        var random = SystemRandomNumberGenerator()
        self.nonce = String(random.next() as UInt64, radix: 16) + String(random.next() as UInt64, radix: 16)
        self.logger = logger
    }

    /// Registers, heartbeats until graceful shutdown, then deregisters.
    public func run() async throws {
        let events = routes.client.connectionEvents()
        guard try await registerWhenReachable() else { return }
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // a new connection may be to a Redis that restarted empty: register again at once
                        for await event in events {
                            if case .connected = event { try await heartbeat() }
                        }
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: ttl / 3)
                            try await heartbeat()
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch let error as ClusterStartupError {
            throw error
        } catch {
            // cancelled by the graceful shutdown
        }
        do {
            let removed = try await routes.deregisterReplica(id: replicaID, instanceNonce: nonce)
            logger.info("deregistered replica", metadata: ["affinity.registry.removed": "\(removed)"])
        } catch {
            logger.warning("deregistering failed; the entry expires by itself", metadata: ["error.message": "\(error)"])
        }
    }

    /// Tries until the first registration succeeds; false when shut down first.
    private func registerWhenReachable() async throws -> Bool {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if routes.client.isConnected {
                do {
                    try await register()
                    return true
                } catch let error as ClusterStartupError {
                    throw error
                } catch {
                    logger.info("registering failed, retrying", metadata: ["error.message": "\(error)"])
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(200)) }
            } catch {
                return false
            }
        }
        return false
    }

    private func register() async throws {
        do {
            try await routes.registerReplica(
                id: replicaID, peerAddress: peerAddress.description, instanceNonce: nonce, ttl: ttl)
        } catch let error as RouteStoreError where error.code == .replicaIdInUse {
            throw ClusterStartupError(code: "replica_id_in_use", message: error.message)
        }
    }

    private func heartbeat() async throws {
        guard routes.client.isConnected else { return }
        do {
            switch try await routes.heartbeat(id: replicaID, instanceNonce: nonce, ttl: ttl) {
            case .refreshed:
                return
            case .expired:
                logger.info("registration expired (Redis restarted?); registering again")
                try await register()
            case .takenOver:
                throw ClusterStartupError(
                    code: "replica_id_taken_over",
                    message: "another instance registered replica id '\(replicaID)'; this one stops")
            }
        } catch let error as ClusterStartupError {
            throw error
        } catch {
            logger.debug("heartbeat failed", metadata: ["error.message": "\(error)"])
        }
    }
}
