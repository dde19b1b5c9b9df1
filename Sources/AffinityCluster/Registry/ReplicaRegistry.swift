public import AffinityPeer
import AffinityRedis
public import Logging
public import ServiceLifecycle

/// Keeps this replica registered in Redis with its peer address, as a `Service`.
///
/// At start (once Redis is reachable) it registers with its instance nonce (the peer server's instance id).
/// When another instance holds the id, it asks the peer address of that registration who answers there:
/// the same instance -> a second live process holds the id: ``run()`` throws ``ClusterStartupError``
/// (`replica_id_in_use`) and the replica stops; another instance (a container restarted in the same pod
/// answers on its old address) or another replica -> the registered instance is gone: its registration is
/// taken over at once; nobody -> it cannot tell, and waits (not ready) until the registration's lease runs
/// out. Until it is registered, the replica is not ready (`onRegistered` turns it ready). Then it
/// heartbeats every third of the TTL and at every new Redis connection; a registration that expired (Redis
/// restarted empty) is written again at once.
/// On graceful shutdown it deregisters. Place it before the application in the service group so it stops
/// after the drain.
public struct ReplicaRegistry: Service {
    private let records: RedisReplicaRecords
    private let replicaID: String
    private let peerAddress: PeerAddress
    private let ttl: Duration
    private let nonce: String
    private let identify: @Sendable (PeerAddress) async -> PeerIdentity?
    private let onRegistered: @Sendable () -> Void
    private let logger: Logger

    /// Creates the registry entry of `replicaID` at `peerAddress`, alive for `ttl` without a heartbeat.
    ///
    /// - Parameters:
    ///   - instanceNonce: this process's instance id, as the peer server answers it to `Ping`.
    ///   - identify: asks a peer address who answers there (nil: nobody answered).
    ///   - onRegistered: called once the first registration succeeded (readiness).
    public init(
        records: RedisReplicaRecords, replicaID: String, peerAddress: PeerAddress, ttl: Duration,
        instanceNonce: String = PeerServerConfiguration.randomInstanceID(),
        identify: @escaping @Sendable (PeerAddress) async -> PeerIdentity? = { _ in nil },
        onRegistered: @escaping @Sendable () -> Void = {}, logger: Logger
    ) {
        self.records = records
        self.replicaID = replicaID
        self.peerAddress = peerAddress
        self.ttl = ttl
        self.nonce = instanceNonce
        self.identify = identify
        self.onRegistered = onRegistered
        self.logger = logger
    }

    /// Registers, heartbeats until graceful shutdown, then deregisters.
    public func run() async throws {
        let events = records.client.connectionEvents()
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
            let removed = try await records.deregister(id: replicaID, instanceNonce: nonce)
            logger.info("deregistered replica", metadata: ["affinity.registry.removed": "\(removed)"])
        } catch {
            logger.warning("deregistering failed; the entry expires by itself", metadata: ["error.message": "\(error)"])
        }
    }

    /// Tries until the first registration succeeds; false when shut down first.
    private func registerWhenReachable() async throws -> Bool {
        var waitingSince: ContinuousClock.Instant?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if records.client.isConnected {
                do {
                    switch try await records.register(
                        id: replicaID, peerAddress: peerAddress.description, instanceNonce: nonce, ttl: ttl)
                    {
                    case .registered:
                        onRegistered()
                        return true
                    case .taken(let address, let previous):
                        if try await takeOver(address: address, previous: previous, waitingSince: &waitingSince) {
                            onRegistered()
                            return true
                        }
                    }
                } catch let error as ClusterStartupError {
                    throw error
                } catch {
                    logger.info("registering failed, retrying", metadata: ["error.message": "\(error)"])
                }
            }
            do {
                let pause: Duration = waitingSince == nil ? .milliseconds(200) : .seconds(1)
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            } catch {
                return false
            }
        }
        return false
    }

    /// Another instance holds the id: asks its registered address who answers there. Returns true when this
    /// instance registered (the other one is proven gone), false to wait; throws when it is alive.
    private func takeOver(
        address: String, previous: String, waitingSince: inout ContinuousClock.Instant?
    ) async throws -> Bool {
        let identity = await PeerAddress(parsing: address).asyncFlatMap { await identify($0) }
        if let identity, identity.replicaID == replicaID, identity.instanceID == previous {
            throw ClusterStartupError(
                code: "replica_id_in_use",
                message: "replica id '\(replicaID)' is already registered by another live instance (peer address "
                    + "\(address) answers as it); choose another --replica-id or stop the other instance")
        }
        guard let identity else {
            if waitingSince == nil {
                waitingSince = .now
                logger.warning(
                    "replica id registered by a previous instance whose peer address does not answer; waiting for the previous instance's registration to expire (not ready meanwhile)",
                    metadata: ["affinity.replica": "\(replicaID)", "affinity.peer": "\(address)"])
            }
            return false
        }
        // the address answers as another process (this one, restarted in the same place) or another replica:
        // the registered instance is gone
        logger.info(
            "replica id registered by a previous instance that is gone; taking the registration over",
            metadata: [
                "affinity.replica": "\(replicaID)", "affinity.peer": "\(address)",
                "affinity.peer.answered_as": "\(identity.replicaID)/\(identity.instanceID.prefix(8))",
            ])
        switch try await records.register(
            id: replicaID, peerAddress: peerAddress.description, instanceNonce: nonce, ttl: ttl, replacing: previous)
        {
        case .registered: return true
        case .taken: return false
        }
    }

    /// Registers again after the entry expired (Redis restarted empty); when another instance came first,
    /// decides as at start.
    private func register() async throws {
        var waitingSince: ContinuousClock.Instant?
        switch try await records.register(
            id: replicaID, peerAddress: peerAddress.description, instanceNonce: nonce, ttl: ttl)
        {
        case .registered:
            return
        case .taken(let address, let previous):
            if try await !takeOver(address: address, previous: previous, waitingSince: &waitingSince) {
                throw ClusterStartupError(
                    code: "replica_id_taken_over",
                    message: "another instance registered replica id '\(replicaID)'; this one stops")
            }
        }
    }

    private func heartbeat() async throws {
        guard records.client.isConnected else { return }
        do {
            switch try await records.heartbeat(id: replicaID, instanceNonce: nonce, ttl: ttl) {
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

extension Optional {
    fileprivate func asyncFlatMap<U>(_ transform: (Wrapped) async -> U?) async -> U? {
        guard let value = self else { return nil }
        return await transform(value)
    }
}
