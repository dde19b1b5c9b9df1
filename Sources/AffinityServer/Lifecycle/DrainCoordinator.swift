import AffinityProtocol
import Logging
import ServiceLifecycle

/// Runs the graceful drain of section 3.5 of DESIGN.md when the service group shuts down.
///
/// It must be the LAST service of the group, so that it is shut down FIRST (services stop in
/// reverse start order): it drains while the HTTP server still runs, because hummingbird-websocket
/// closes every socket with 1000 once the server itself shuts down.
///
/// Steps: readiness turns 503 and new upgrades are refused; worker connections are told `drain`
/// but stay open, so a worker stops sending outcomes here and still receives the answers to those
/// it sent; every client connection gets `{"type":"drain"}` then close 1001 (their unacked live
/// outcomes are parked); deliveries in progress finish (outcomes a worker still sends are
/// delivered as usual); workers close their connections once every outcome they sent was answered
/// (the Swift `OutcomePublisher` does); those still open after ``workerGrace`` are closed with 1001.
/// All within `drainTimeout`.
struct DrainCoordinator: Service {
    let environment: SessionEnvironment
    let logger: Logger

    /// How long workers told `drain` get to close their connections themselves.
    static let workerGrace: Duration = .seconds(2)

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return
        }
        guard environment.readiness.startDraining() else { return }
        let deadline = ContinuousClock.now + environment.configuration.drainTimeout - .milliseconds(500)
        let connections = environment.registry.connections
        logger.info("draining", metadata: ["affinity.connections": "\(connections.count)"])
        for connection in connections where connection.role == .worker {
            connection.announceDrain()
        }
        for connection in connections where connection.role != .worker {
            connection.drain()
        }
        for waiter in environment.registry.longPolls {
            waiter.cancelForDrain()
        }
        await waitUntil(deadline: deadline) { environment.coordinator.deliveriesInProgress == 0 }
        // A worker that got `drain` closes by itself once every outcome it sent here was answered, so
        // that none is on the wire when the connection goes; others are closed after a grace period.
        let workerGrace = min(deadline, ContinuousClock.now + Self.workerGrace)
        await waitUntil(deadline: workerGrace) {
            !environment.registry.connections.contains { $0.role == .worker }
        }
        await waitUntil(deadline: deadline) { environment.coordinator.deliveriesInProgress == 0 }
        for connection in environment.registry.connections {
            connection.drain()
        }
        await waitUntil(deadline: deadline) { environment.registry.connections.isEmpty }
        logger.info(
            "drained",
            metadata: [
                "affinity.connections": "\(environment.registry.connections.count)",
                "affinity.deliveries": "\(environment.coordinator.deliveriesInProgress)",
            ])
    }

    private func waitUntil(deadline: ContinuousClock.Instant, _ condition: () -> Bool) async {
        while !condition() && ContinuousClock.now < deadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
