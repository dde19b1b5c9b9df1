/// The retry back-off of a job whose outcome was not acknowledged: `initial` for the first failure,
/// doubled for every further failure of the same job, never above `maximum`, spread by a random
/// `jitter` fraction so that jobs failed together (a replica went away) do not all come back at once.
public struct FailureBackoff: Sendable, Equatable {
    /// The back-off after the first failure (1 s).
    public var initial: Duration
    /// The largest back-off (1 min).
    public var maximum: Duration
    /// The fraction by which a back-off is spread around its nominal value, 0 to 1 (0.2: ±20 %).
    public var jitter: Double

    /// Creates a back-off policy.
    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(60), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The back-off after the `failure`-th failed attempt of a job (1 for the first).
    ///
    /// - Parameter random: a value in `0..<1` that places the result within the jitter range
    ///   (0.5 gives the nominal value).
    public func delay(afterFailure failure: Int, random: Double) -> Duration {
        let doublings = min(max(failure - 1, 0), 62)
        var nominal = maximum
        let scale = Double(UInt64(1) << UInt64(doublings))
        let initialSeconds = Self.seconds(initial)
        if initialSeconds * scale < Self.seconds(maximum) {
            nominal = initial * scale
        }
        let spread = 1 + jitter * (2 * min(max(random, 0), 1) - 1)
        return min(nominal * spread, maximum)
    }

    private static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
