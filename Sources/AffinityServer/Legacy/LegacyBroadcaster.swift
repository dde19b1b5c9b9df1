import AffinityProtocol
import CoreMetrics
import Logging
import Synchronization

/// Sends every outcome to every client of the legacy protocol, on this replica and (through
/// ``LegacyPeers``) on the other replicas that hold some, as the Node package's singleton server did.
///
/// The caller awaits each broadcast before the next one of the same worker, so the outcomes of a worker
/// reach each legacy client in the order the worker sent them. A legacy client that does not read is
/// closed as a slow consumer by its bounded outbound queue, like any other connection.
final class LegacyBroadcaster: Sendable {
    private let clients = Mutex<[ConnectionID: WebSocketConnection]>([:])
    private let peers: (any LegacyPeers)?
    private let metrics: LegacyMetrics
    private let logger: Logger

    init(peers: (any LegacyPeers)?, metrics: LegacyMetrics, logger: Logger) {
        self.peers = peers
        self.metrics = metrics
        self.logger = logger
    }

    /// Whether this replica holds legacy clients now (the cluster layer records it in Redis).
    var holdsClients: Bool { clients.withLock { !$0.isEmpty } }

    func add(_ connection: WebSocketConnection) {
        clients.withLock { $0[connection.connectionID] = connection }
    }

    func remove(_ connection: WebSocketConnection) {
        clients.withLock { _ = $0.removeValue(forKey: connection.connectionID) }
    }

    /// Sends `outcome` to the legacy clients of this replica and of every other replica that holds some.
    func broadcast(_ outcome: Outcome) async {
        sendToLocalClients(outcome)
        guard let peers else { return }
        let replicas = peers.replicasHoldingLegacyClients()
        guard !replicas.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for replica in replicas {
                group.addTask {
                    do throws(AffinityError) {
                        try await peers.sendToLegacyClients(outcome, of: replica)
                        self.metrics.forwarded.increment()
                    } catch {
                        self.metrics.forwardFailures.increment()
                        self.logger.debug(
                            "a legacy broadcast to another replica failed",
                            metadata: ["affinity.replica": "\(replica)", "error.message": "\(error.message)"])
                    }
                }
            }
        }
    }

    /// Sends `outcome` to the legacy clients of this replica only.
    func sendToLocalClients(_ outcome: Outcome) {
        let targets = clients.withLock { Array($0.values) }
        guard !targets.isEmpty else { return }
        let frame = LegacyMessage.outcomeFrame(outcome)
        for client in targets where client.send(frame: frame) {
            metrics.sent.increment()
        }
    }
}

/// The metrics of the legacy protocol: `affinity_legacy_connections{role}`,
/// `affinity_legacy_outcomes_total{direction}` (`received` from legacy workers, `sent` to legacy clients,
/// `forwarded` to other replicas' legacy clients, `forward_failed`) and `affinity_legacy_invalid_frames_total`.
struct LegacyMetrics: Sendable {
    let clients: Meter
    let workers: Meter
    let unregistered: Meter
    let received: Counter
    let sent: Counter
    let forwarded: Counter
    let forwardFailures: Counter
    let invalidFrames: Counter

    init(factory: any MetricsFactory) {
        clients = Meter(label: "affinity_legacy_connections", dimensions: [("role", "client")], factory: factory)
        workers = Meter(label: "affinity_legacy_connections", dimensions: [("role", "worker")], factory: factory)
        unregistered = Meter(label: "affinity_legacy_connections", dimensions: [("role", "none")], factory: factory)
        received = Counter(
            label: "affinity_legacy_outcomes_total", dimensions: [("direction", "received")], factory: factory)
        sent = Counter(label: "affinity_legacy_outcomes_total", dimensions: [("direction", "sent")], factory: factory)
        forwarded = Counter(
            label: "affinity_legacy_outcomes_total", dimensions: [("direction", "forwarded")], factory: factory)
        forwardFailures = Counter(
            label: "affinity_legacy_outcomes_total", dimensions: [("direction", "forward_failed")], factory: factory)
        invalidFrames = Counter(label: "affinity_legacy_invalid_frames_total", factory: factory)
    }
}
