/// Small statistics over per-run values.
public enum Statistics {
    /// The median (the mean of the two middle values for an even count); nil for no values.
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// One reported number: its value in every run and the median.
public struct SummaryMetric: Codable, Sendable, Equatable {
    /// A stable dotted name, e.g. `cluster.outcomes_per_second`.
    public var name: String
    /// The unit (`outcomes/s`, `ms`, `commands/outcome`, `KiB`, `ratio`).
    public var unit: String
    /// The value in each run that measured it, in run order.
    public var perRun: [Double]
    /// The median of `perRun`.
    public var median: Double

    /// Creates a metric from per-run values (nil when there are none).
    public init?(name: String, unit: String, perRun: [Double]) {
        guard let median = Statistics.median(perRun) else { return nil }
        self.name = name
        self.unit = unit
        self.perRun = perRun
        self.median = median
    }
}

/// One target of issue #4 and whether the medians meet it.
public struct TargetResult: Codable, Sendable, Equatable {
    /// What is required, in words.
    public var target: String
    /// The metric compared.
    public var metric: String
    /// The metric's median.
    public var value: Double
    /// The threshold.
    public var threshold: Double
    /// `<=`, `<` or `>=`.
    public var comparison: String
    /// Whether the median meets it.
    public var passed: Bool

    /// Compares `value` with `threshold`.
    public init(target: String, metric: String, value: Double, comparison: String, threshold: Double) {
        self.target = target
        self.metric = metric
        self.value = value
        self.threshold = threshold
        self.comparison = comparison
        switch comparison {
        case "<": passed = value < threshold
        case "<=": passed = value <= threshold
        default: passed = value >= threshold
        }
    }
}
