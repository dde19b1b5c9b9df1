import AffinityClient
import Testing

@Suite struct ReconnectBackoffTests {
    let backoff = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2, jitter: 0.5)

    @Test func growsExponentiallyUpToTheMaximum() {
        #expect(backoff.delay(afterFailures: 1, random: 0) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 2, random: 0) == .milliseconds(200))
        #expect(backoff.delay(afterFailures: 4, random: 0) == .milliseconds(800))
        #expect(backoff.delay(afterFailures: 6, random: 0) == .seconds(2))
        #expect(backoff.delay(afterFailures: 10_000, random: 0) == .seconds(2))
    }

    @Test func jitterTakesAtMostTheConfiguredShare() {
        #expect(backoff.delay(afterFailures: 3, random: 1) == .milliseconds(200))
        #expect(backoff.delay(afterFailures: 3, random: 0.5) == .milliseconds(300))
        let noJitter = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0)
        #expect(noJitter.delay(afterFailures: 2, random: 0.9) == .milliseconds(200))
    }

    @Test func clampsOddSettings() {
        let odd = ReconnectBackoff(initial: .seconds(1), maximum: .milliseconds(10), multiplier: 0.1, jitter: 7)
        #expect(odd.maximum == .seconds(1))
        #expect(odd.multiplier == 1)
        #expect(odd.jitter == 1)
        #expect(odd.delay(afterFailures: 0, random: -3) == .seconds(1))
    }
}
