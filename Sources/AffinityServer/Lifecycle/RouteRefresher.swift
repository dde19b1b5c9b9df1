import AffinityProtocol
import Logging
import ServiceLifecycle

/// Writes the routes of this replica's local subscriptions back to a shared store at a fixed
/// interval: it keeps route TTLs alive in the Redis store and re-creates the routes of
/// subscriptions made while the store was unreachable. Used when the store is shared (cluster
/// mode); the embedded store needs no refresh.
struct RouteRefresher: Service {
    let store: any OutcomeStore
    let registry: ConnectionRegistry
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            let routes = registry.localRoutes()
            guard !routes.isEmpty else { continue }
            do {
                try await store.refreshRoutes(routes)
                logger.trace("routes refreshed", metadata: ["affinity.routes": "\(routes.count)"])
            } catch {
                logger.warning(
                    "refreshing routes failed",
                    metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
            }
        }
    }
}
