import Foundation

extension BenchReport {
    /// The human-readable report: every metric with its median and per-run values, the targets, and the
    /// outcome check.
    public func renderTable() -> String {
        var lines: [String] = []
        lines.append(
            "affinity-bench: \(setup.runs) run(s), phases \(setup.phases.joined(separator: ",")), "
                + "\(Self.format(setup.durationSeconds)) s windows after \(Self.format(setup.warmupSeconds)) s warm-up, "
                + "concurrency \(setup.concurrency), \(setup.cpus) CPUs")
        lines.append("server: \(setup.server); \(setup.redisVersion)")
        lines.append(
            "event loop threads: \(setup.replicaEventLoopThreads.map(String.init) ?? "server default (CPUs available)") per replica, "
                + "\(setup.loadEventLoopThreads.map(String.init) ?? "?") in the load generator")
        lines.append("")
        let runHeaders = runs.map { "run \($0.run)" }
        let header =
            [Self.pad("metric", 38), Self.pad("unit", 17), Self.pad("median", 10, right: true)]
            + runHeaders.map { Self.pad($0, 10, right: true) }
        lines.append(header.joined(separator: " "))
        for metric in metrics {
            var row = [
                Self.pad(metric.name, 38), Self.pad(metric.unit, 17),
                Self.pad(Self.format(metric.median), 10, right: true),
            ]
            row += metric.perRun.map { Self.pad(Self.format($0), 10, right: true) }
            lines.append(row.joined(separator: " "))
        }
        lines.append("")
        lines.append("targets (medians; a missed target is reported, not an error):")
        if targets.isEmpty { lines.append("  (none of the selected phases has a target)") }
        for target in targets {
            lines.append(
                "  \(target.passed ? "PASS" : "MISS")  \(target.target): \(Self.format(target.value)) "
                    + "(\(target.comparison) \(Self.format(target.threshold)))")
        }
        lines.append("")
        let counts = correctness
        lines.append(
            "outcomes: sent \(counts.sent), received by their own client \(counts.received), lost \(counts.lost), "
                + "wrong client \(counts.wrongClient), duplicates \(counts.duplicates), altered \(counts.corrupted), "
                + "not delivered \(counts.notDelivered), unexpected frames \(counts.protocolErrors)")
        lines.append(passed ? "result: OK" : "result: FAILED: \(failure ?? "")")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A number with at most three decimals, fewer for large values.
    static func format(_ value: Double) -> String {
        let magnitude = abs(value)
        let decimals = magnitude >= 1000 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3
        return String(format: "%.\(decimals)f", value)
    }

    private static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        guard text.count < width else { return text }
        let padding = String(repeating: " ", count: width - text.count)
        return right ? padding + text : text + padding
    }
}
