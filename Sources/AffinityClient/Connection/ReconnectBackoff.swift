/// Exponential back-off with jitter for reconnect attempts.
///
/// The delay for the `n`-th failure in a row is `min(maximum, initial * multiplier^(n-1))`, of which a
/// random share between `1 - jitter` and 1 is used, so that many clients that lost the same replica do
/// not all reconnect at the same instant.
public struct ReconnectBackoff: Sendable, Hashable {
    /// The delay after the first failure (before jitter).
    public var initial: Duration
    /// The longest delay (before jitter).
    public var maximum: Duration
    /// The growth factor per failure.
    public var multiplier: Double
    /// The share of the delay that is randomised, in `0...1`.
    public var jitter: Double

    /// Creates a back-off; the defaults suit a Kubernetes Service (100 ms doubling up to 10 s, 50 % jitter).
    public init(
        initial: Duration = .milliseconds(100), maximum: Duration = .seconds(10), multiplier: Double = 2,
        jitter: Double = 0.5
    ) {
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.multiplier = max(multiplier, 1)
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The delay after `failures` failures in a row (at least 1), with `random` in `0..<1` choosing the jitter.
    public func delay(afterFailures failures: Int, random: Double) -> Duration {
        let initialSeconds = Self.seconds(initial)
        let maximumSeconds = Self.seconds(maximum)
        let exponent = Double(max(failures, 1) - 1)
        let raw = min(maximumSeconds, initialSeconds * power(multiplier, min(exponent, 64)))
        let share = 1 - jitter * min(max(random, 0), 1)
        return .nanoseconds(Int64((raw * share * 1e9).rounded()))
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    private func power(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 {
            result *= base
            remaining -= 1
            if result > 1e12 { return result }
        }
        return result
    }
}
