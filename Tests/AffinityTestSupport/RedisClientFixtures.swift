public import AffinityRedis
import Foundation
public import Logging

/// Runs a ``RedisClient`` for `body` (its `run()` in a task group), waiting first for the connection unless
/// `waitForConnection` is false; cancels it afterwards.
public func withRedisClient<T: Sendable>(
    _ configuration: RedisConfiguration, waitForConnection: Bool = true,
    _ body: @Sendable (RedisClient) async throws -> T
) async throws -> T {
    let client = RedisClient(configuration: configuration, logger: testLogger("redis-client"))
    let events = client.connectionEvents()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        defer { group.cancelAll() }
        if waitForConnection {
            try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
        }
        return try await body(client)
    }
}

/// Waits for the first event that matches, failing after `timeout`.
@discardableResult
public func waitFor(
    _ events: AsyncStream<RedisConnectionEvent>, timeout: Duration,
    _ matches: @escaping @Sendable (RedisConnectionEvent) -> Bool
) async throws -> RedisConnectionEvent {
    try await withThrowingTaskGroup(of: RedisConnectionEvent?.self) { group in
        group.addTask {
            for await event in events where matches(event) { return event }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let event = first else {
            throw FixtureError("no matching Redis connection event within \(timeout)")
        }
        return event
    }
}

/// A logger for tests: silent unless `AFFINITY_TEST_LOG_LEVEL` names a level.
public func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel =
        ProcessInfo.processInfo.environment["AFFINITY_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
        ?? .critical
    return logger
}
