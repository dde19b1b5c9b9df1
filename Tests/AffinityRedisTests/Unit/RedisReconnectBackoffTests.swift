import AffinityRedis
import AffinityTestSupport
import Testing

@Suite("Reconnect back-off")
struct RedisReconnectBackoffTests {
    @Test func growsExponentiallyUpToTheMaximumWithoutJitter() {
        var backoff = RedisReconnectBackoff(
            configuration: .init(initialDelay: .milliseconds(100), maximumDelay: .seconds(1), multiplier: 2, jitter: 0))
        var random = SeededRandom(seed: 1)
        let delays = (0..<6).map { _ in backoff.nextDelay(using: &random) }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1),
                .seconds(1),
            ])
        #expect(backoff.failures == 6)
    }

    @Test func jitterStaysWithinItsShare() {
        var backoff = RedisReconnectBackoff(
            configuration: .init(initialDelay: .seconds(1), maximumDelay: .seconds(1), multiplier: 2, jitter: 0.25))
        var random = SeededRandom(seed: 42)
        var distinct = Set<Duration>()
        for _ in 0..<200 {
            let delay = backoff.nextDelay(using: &random)
            #expect(delay >= .milliseconds(750) && delay <= .seconds(1))
            distinct.insert(delay)
        }
        #expect(distinct.count > 100, "jitter must spread the delays")
    }

    @Test func resetStartsOver() {
        var backoff = RedisReconnectBackoff(
            configuration: .init(initialDelay: .milliseconds(10), maximumDelay: .seconds(5), jitter: 0))
        var random = SeededRandom(seed: 7)
        _ = backoff.nextDelay(using: &random)
        _ = backoff.nextDelay(using: &random)
        backoff.reset()
        #expect(backoff.failures == 0)
        #expect(backoff.nextDelay(using: &random) == .milliseconds(10))
    }

    @Test func clampsInvalidSettings() {
        let configuration = RedisReconnectBackoff.Configuration(multiplier: 0.1, jitter: 3)
        #expect(configuration.multiplier == 1)
        #expect(configuration.jitter == 1)
    }
}
