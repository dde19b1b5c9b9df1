import AffinityProtocol
import Logging
import ServiceLifecycle

/// Writes the routes of this replica's local subscriptions back to a shared store at a fixed
/// interval: it keeps route TTLs alive in the Redis store and re-creates the routes of
/// subscriptions made while the store was unreachable, or lost meanwhile; the subscribers of a key
/// whose route was lost read what was parked for it (see ``DeliveryCoordinator/refreshRoutes()``).
/// Used when the store is shared (cluster mode); the embedded store needs no refresh.
struct RouteRefresher: Service {
    let coordinator: DeliveryCoordinator
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            do {
                let count = try await coordinator.refreshRoutes()
                if count > 0 { logger.trace("routes refreshed", metadata: ["affinity.routes": "\(count)"]) }
            } catch {
                logger.warning(
                    "refreshing routes failed",
                    metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
            }
        }
    }
}
