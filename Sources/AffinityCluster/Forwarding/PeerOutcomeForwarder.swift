public import AffinityPeer
public import AffinityProtocol
import AffinityRedis
public import AffinityServer
public import Logging
import Synchronization

/// Forwards an outcome to the replica that owns its key: looks the replica's peer address up in the
/// registry (cached briefly), then delivers it over the mutual-TLS peer channel and waits for the owner's
/// answer (its client acked, or it parked the outcome).
///
/// Every failure throws `unavailable`; the ``DeliveryCoordinator`` then parks the outcome only if the route
/// still points at that owner, else forwards to the new owner. A `not_owner` answer is such a failure too.
public final class PeerOutcomeForwarder: OutcomeForwarder {
    private let pool: PeerConnectionPool
    private let records: RedisReplicaRecords
    private let timeout: Duration
    private let logger: Logger
    private let cache: Mutex<PeerAddressCache>

    /// Creates a forwarder.
    ///
    /// - Parameters:
    ///   - pool: The peer connections (run it as a service).
    ///   - records: The replicas' registrations in Redis.
    ///   - timeout: How long to wait for the owner's answer; above the owner's ack timeout.
    ///   - addressLifetime: How long a looked-up address is reused.
    ///   - logger: The logger.
    public init(
        pool: PeerConnectionPool, records: RedisReplicaRecords, timeout: Duration,
        addressLifetime: Duration = .seconds(2), logger: Logger
    ) {
        self.pool = pool
        self.records = records
        self.timeout = timeout
        self.logger = logger
        self.cache = Mutex(PeerAddressCache(lifetime: addressLifetime))
    }

    /// Delivers `outcome` on the replica of `route`.
    public func forward(_ outcome: Outcome, to route: Route) async throws(AffinityError) -> DeliveryStatus {
        let address = try await peerAddress(of: route.replicaID)
        let status: ForwardedDeliveryStatus
        do {
            status = try await pool.deliver(outcome, to: address, timeout: timeout)
        } catch {
            switch error.code {
            case .unreachable, .refused, .tls:
                cache.withLock { $0.forget(route.replicaID) }
            case .deadlineExceeded, .rejected, .failed, .shutDown:
                break
            }
            throw AffinityError(
                code: .unavailable, message: "replica \(route.replicaID) at \(address) did not take the outcome",
                cause: SendableDescription(error.description))
        }
        switch status {
        case .delivered: return .delivered
        case .parked: return .parked
        case .notOwner(let owner):
            throw AffinityError(
                code: .unavailable,
                message: "replica \(route.replicaID) no longer owns key \(outcome.key) (owner: \(owner ?? "none"))")
        }
    }

    /// Sends `outcome` to the legacy-protocol clients of `replicaID` (a legacy broadcast: that replica sends it
    /// to its legacy clients only) and returns once it took it.
    public func sendToLegacyClients(_ outcome: Outcome, of replicaID: String) async throws(AffinityError) {
        let address = try await peerAddress(of: replicaID)
        do {
            _ = try await pool.deliver(outcome, to: address, timeout: timeout, legacyBroadcast: true)
        } catch {
            if [.unreachable, .refused, .tls].contains(error.code) { cache.withLock { $0.forget(replicaID) } }
            throw AffinityError(
                code: .unavailable, message: "replica \(replicaID) at \(address) did not take a legacy broadcast",
                cause: SendableDescription(error.description))
        }
    }

    private func peerAddress(of replicaID: String) async throws(AffinityError) -> PeerAddress {
        if let cached = cache.withLock({ $0.address(of: replicaID, at: .now) }) { return cached }
        let text: String?
        do {
            text = try await records.peerAddress(of: replicaID)
        } catch {
            throw .store(error, operation: "lookupReplica")
        }
        guard let text else {
            if let gone = cache.withLock({ $0.unregistered(replicaID) }) { pool.removePeer(gone) }
            throw AffinityError(code: .unavailable, message: "replica \(replicaID) is not registered (gone?)")
        }
        guard let address = PeerAddress(parsing: text) else {
            throw AffinityError(code: .unavailable, message: "replica \(replicaID) registered an unusable address")
        }
        if let moved = cache.withLock({ $0.store(address, for: replicaID, at: .now) }) { pool.removePeer(moved) }
        return address
    }
}
