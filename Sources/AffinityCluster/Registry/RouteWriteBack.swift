import AffinityProtocol
public import AffinityRedis
public import AffinityServer
public import Logging
public import ServiceLifecycle

/// Writes the routes of all local subscriptions back to Redis every time the Redis connection is
/// (re-)established, as a `Service`: after a Redis restart (even an empty one) the cluster finds every live
/// subscription again at once, without waiting for the periodic refresh, and the subscribers read what was
/// parked for their keys while the routes were missing.
public struct RouteWriteBack: Service {
    private let client: RedisClient
    private let replica: LocalReplica
    private let logger: Logger

    /// Creates the service for `replica`'s subscriptions.
    public init(client: RedisClient, replica: LocalReplica, logger: Logger) {
        self.client = client
        self.replica = replica
        self.logger = logger
    }

    /// Watches the connection until graceful shutdown.
    public func run() async throws {
        let events = client.connectionEvents()
        await cancelWhenGracefulShutdown {
            for await event in events {
                guard case .connected(let generation) = event else { continue }
                await writeBack(generation: generation)
            }
        }
    }

    private func writeBack(generation: Int) async {
        do {
            let count = try await replica.writeRoutesBack()
            guard count > 0 else { return }
            logger.info(
                "routes written back to redis",
                metadata: ["affinity.routes": "\(count)", "redis.generation": "\(generation)"])
        } catch {
            logger.warning(
                "writing routes back failed; the periodic refresh retries",
                metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
        }
    }
}
