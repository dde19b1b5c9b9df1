import Logging
public import ServiceLifecycle

/// A service that removes expired parked outcomes from an ``InMemoryOutcomeStore`` at a fixed interval.
public struct ParkedOutcomeSweeper: Service {
    private let store: InMemoryOutcomeStore
    private let interval: Duration
    private let logger: Logger

    /// Creates the sweeper; `interval` is how often it runs.
    public init(store: InMemoryOutcomeStore, interval: Duration, logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    /// Sweeps until graceful shutdown or cancellation.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: interval)
                }
            } catch {
                return
            }
            let removed = store.removeExpired()
            if removed > 0 {
                logger.debug("parked outcomes expired", metadata: ["affinity.expired": "\(removed)"])
            }
        }
    }
}
