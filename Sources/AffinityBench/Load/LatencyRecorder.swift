import Histogram
import Synchronization

/// Thread-safe HdrHistograms of latencies in microseconds (1 µs to 60 s, three significant digits): one of
/// every outcome, and one each of the outcomes delivered on the worker's replica (local) and of those
/// forwarded to another replica.
public final class LatencyRecorder: Sendable {
    /// Which outcomes a summary covers.
    public enum Path: Sendable {
        /// Every outcome.
        case all
        /// Outcomes whose worker sat on the client's replica.
        case local
        /// Outcomes forwarded from the worker's replica to the client's.
        case forwarded
    }

    private struct Histograms {
        var all = LatencyRecorder.histogram()
        var local = LatencyRecorder.histogram()
        var forwarded = LatencyRecorder.histogram()
    }

    private let histograms = Mutex(Histograms())

    /// An empty recorder.
    public init() {}

    private static func histogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }

    /// Records one latency given in nanoseconds (rounded to the microsecond, at least 1 µs).
    public func record(nanoseconds: UInt64, forwarded: Bool = false) {
        let microseconds = max(1, (nanoseconds + 500) / 1000)
        histograms.withLock {
            _ = $0.all.record(microseconds)
            if forwarded {
                _ = $0.forwarded.record(microseconds)
            } else {
                _ = $0.local.record(microseconds)
            }
        }
    }

    /// The number of latencies recorded.
    public var count: UInt64 { histograms.withLock { $0.all.totalCount } }

    /// p50, p99, p99.9 and the maximum of `path`, in milliseconds.
    public func summary(_ path: Path = .all) -> LatencySummary {
        histograms.withLock { histograms in
            let histogram: Histogram<UInt64>
            switch path {
            case .all: histogram = histograms.all
            case .local: histogram = histograms.local
            case .forwarded: histogram = histograms.forwarded
            }
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
