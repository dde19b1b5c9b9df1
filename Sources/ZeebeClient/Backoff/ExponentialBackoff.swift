/// Exponential back-off with jitter, the way the official Zeebe clients compute it:
/// `next = clamp(previous × multiplier, minimum, maximum) ± jitter`.
///
/// It is a pure value: the random source is passed in, so tests can pin it.
public struct ExponentialBackoff: Sendable, Hashable {
    /// The smallest delay.
    public var minimum: Duration
    /// The largest delay.
    public var maximum: Duration
    /// How much each step grows the previous delay.
    public var multiplier: Double
    /// The jitter as a fraction of the delay (0.1 = ±10 %).
    public var jitter: Double

    /// The defaults of the official clients: 50 ms to 5 s, × 1.6, ±10 %.
    public static let standard = ExponentialBackoff(
        minimum: .milliseconds(50),
        maximum: .seconds(5),
        multiplier: 1.6,
        jitter: 0.1
    )

    /// Creates a back-off.
    public init(minimum: Duration, maximum: Duration, multiplier: Double, jitter: Double) {
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay that follows `previous`.
    public func next(after previous: Duration, using generator: inout some RandomNumberGenerator) -> Duration {
        let grown = previous.seconds * multiplier
        let clamped = min(max(grown, minimum.seconds), maximum.seconds)
        let spread = clamped * jitter
        let jittered = spread > 0 ? clamped + Double.random(in: -spread...spread, using: &generator) : clamped
        return .nanoseconds(Int64((jittered * 1e9).rounded()))
    }

    /// The delay that follows `previous`, with the system random source.
    public func next(after previous: Duration) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return next(after: previous, using: &generator)
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, as the gateway's `int64` millisecond fields want it.
    var milliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}
