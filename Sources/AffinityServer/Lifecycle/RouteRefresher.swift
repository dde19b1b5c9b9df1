import AffinityProtocol
import Logging
import ServiceLifecycle

/// Keeps the routes of this replica's local subscriptions in a shared store (cluster mode; the embedded store
/// needs none of this), as one `Service`:
///
/// - at a fixed interval (a third of the route TTL): it keeps route TTLs alive, re-creates the routes of
///   subscriptions made while the store was unreachable or lost meanwhile;
/// - every time the store's connection is re-established (``OutcomeStore/connectionRestored()``): after a Redis
///   restart, even an empty one, or a failover, the cluster finds every live subscription again at once,
///   without waiting for the next interval.
///
/// Each time, the subscribers of a key with outcomes parked while its route was missing read them (see
/// ``DeliveryCoordinator/refreshRoutes()``). A route another replica took meanwhile is never overwritten.
struct RouteRefresher: Service {
    let coordinator: DeliveryCoordinator
    let store: any OutcomeStore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let restored = store.connectionRestored()
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                if let restored {
                    group.addTask {
                        for await _ in restored {
                            await refresh(afterReconnection: true)
                        }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await Task.sleep(for: interval)
                        } catch {
                            return
                        }
                        await refresh(afterReconnection: false)
                    }
                }
            }
        }
    }

    private func refresh(afterReconnection: Bool) async {
        do {
            let count = try await coordinator.refreshRoutes()
            guard count > 0 else { return }
            if afterReconnection {
                logger.info("routes written back after the store reconnected", metadata: ["affinity.routes": "\(count)"])
            } else {
                logger.trace("routes refreshed", metadata: ["affinity.routes": "\(count)"])
            }
        } catch {
            logger.warning(
                afterReconnection
                    ? "writing routes back after the store reconnected failed; the periodic refresh retries"
                    : "refreshing routes failed",
                metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
        }
    }
}
