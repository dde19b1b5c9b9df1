/// Exponential reconnect back-off with jitter, I/O-free.
///
/// The n-th consecutive failed attempt waits `initialDelay * multiplier^(n-1)`, capped at `maximumDelay`, then
/// reduced by a random share of up to `jitter` (so replicas that lost Redis together do not reconnect in
/// lockstep). A successful connection resets it.
public struct RedisReconnectBackoff: Sendable {
    /// The back-off settings.
    public struct Configuration: Sendable, Hashable {
        /// The delay after the first failure.
        public var initialDelay: Duration
        /// The largest delay.
        public var maximumDelay: Duration
        /// The growth factor per failure (at least 1).
        public var multiplier: Double
        /// The share of each delay (0...1) that is randomly taken off.
        public var jitter: Double

        /// Creates the settings; the defaults go 100 ms, 200 ms, 400 ms ... up to 5 s, with 20 % jitter.
        public init(
            initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5),
            multiplier: Double = 2, jitter: Double = 0.2
        ) {
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
            self.multiplier = max(1, multiplier)
            self.jitter = min(1, max(0, jitter))
        }
    }

    /// The settings in use.
    public let configuration: Configuration
    /// Consecutive failures since the last reset.
    public private(set) var failures = 0

    /// Creates a back-off in its reset state.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Records a failure and returns how long to wait before the next attempt.
    public mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration {
        failures += 1
        let initial = configuration.initialDelay.seconds
        let maximum = max(initial, configuration.maximumDelay.seconds)
        let exponent = Double(min(failures - 1, 64))
        let base = min(maximum, initial * pow(configuration.multiplier, exponent))
        let cut = configuration.jitter > 0 ? Double.random(in: 0...configuration.jitter, using: &generator) : 0
        return .nanoseconds(Int64((base * (1 - cut) * 1e9).rounded()))
    }

    /// Records a success: the next failure starts from the initial delay again.
    public mutating func reset() {
        failures = 0
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// `pow` without Foundation, for the small exponents of the back-off.
private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 && result < 1e12 {
        result *= base
        remaining -= 1
    }
    return result
}
