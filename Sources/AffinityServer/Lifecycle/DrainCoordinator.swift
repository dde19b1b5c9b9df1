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
/// All within `drainTimeout`. The steps after the announcement are ``DrainPlan``'s, woken by a ``DrainSignal``
/// when the last delivery in progress ends or a connection goes (no polling).
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
        // the plan advances on what the replica still holds: the coordinator and the registry poke the signal
        // when the last delivery ends or a connection goes, and the plan's deadlines wake it too
        let signal = environment.registry.drainSignal
        signal.arm()
        var plan = DrainPlan(deadline: deadline, workerGrace: Self.workerGrace)
        while !Task.isCancelled {
            let connections = environment.registry.connections
            let snapshot = DrainPlan.Snapshot(
                deliveries: environment.coordinator.deliveriesInProgress,
                workers: connections.count(where: { $0.role == .worker }), connections: connections.count)
            if plan.observe(snapshot, now: .now) == .closeEveryConnection {
                for connection in connections { connection.drain() }
            }
            if plan.isFinished { break }
            await signal.wait(until: plan.nextDeadline)
        }
        logger.info(
            "drained",
            metadata: [
                "affinity.connections": "\(environment.registry.connections.count)",
                "affinity.deliveries": "\(environment.coordinator.deliveriesInProgress)",
            ])
    }
}
