import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time of processes from `/proc/<pid>/stat`, to show where the cycles of a measurement went.
public enum ProcessCPU {
    /// User plus system CPU seconds `pid` has used so far (nil when the process is gone).
    public static func seconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return seconds(inStat: text, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// `utime + stime` of a `/proc/<pid>/stat` line, in seconds.
    public static func seconds(inStat text: String, ticksPerSecond: Double) -> Double? {
        // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ')'.
        guard let close = text.lastIndex(of: ")"), ticksPerSecond > 0 else { return nil }
        let fields = text[text.index(after: close)...].split(whereSeparator: \.isWhitespace)
        // fields[0] is field 3 (state); utime is field 14, stime field 15.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }
}

/// CPU seconds used by the replicas, Redis and the benchmark itself, sampled at one moment.
struct CPUSnapshot {
    let replicas: Double
    let redis: Double
    let bench: Double

    static func take(_ replicas: ReplicaSet) -> CPUSnapshot {
        CPUSnapshot(
            replicas: replicas.replicas.compactMap { ProcessCPU.seconds(pid: $0.process.pid) }.reduce(0, +),
            redis: (replicas.redis?.processes ?? []).compactMap { ProcessCPU.seconds(pid: $0.pid) }.reduce(0, +),
            bench: ProcessCPU.seconds(pid: getpid()) ?? 0)
    }
}
