import Histogram
import Synchronization

/// A thread-safe HdrHistogram of latencies in microseconds (1 µs to 60 s, three significant digits).
public final class LatencyRecorder: Sendable {
    private let histogram: Mutex<Histogram<UInt64>>

    /// An empty recorder.
    public init() {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        self.histogram = Mutex(histogram)
    }

    /// Records one latency given in nanoseconds (rounded to the microsecond, at least 1 µs).
    public func record(nanoseconds: UInt64) {
        let microseconds = max(1, (nanoseconds + 500) / 1000)
        histogram.withLock { _ = $0.record(microseconds) }
    }

    /// The number of latencies recorded.
    public var count: UInt64 { histogram.withLock { $0.totalCount } }

    /// p50, p99, p99.9 and the maximum, in milliseconds.
    public func summary() -> LatencySummary {
        histogram.withLock { histogram in
            guard histogram.totalCount > 0 else {
                return LatencySummary(count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0)
            }
            func milliseconds(_ value: UInt64) -> Double { Double(value) / 1000 }
            return LatencySummary(
                count: Int(histogram.totalCount),
                p50Ms: milliseconds(histogram.valueAtPercentile(50)),
                p99Ms: milliseconds(histogram.valueAtPercentile(99)),
                p999Ms: milliseconds(histogram.valueAtPercentile(99.9)),
                maxMs: milliseconds(histogram.max))
        }
    }
}
