import Foundation

/// Reads a process's resident set size from `/proc/<pid>/status`.
public enum ProcessMemory {
    /// `VmRSS` of `pid` in KiB.
    public static func residentKiB(pid: Int32) throws(BenchError) -> Int {
        let path = "/proc/\(pid)/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw BenchError(.processFailed, "cannot read \(path) (process gone?)")
        }
        guard let value = vmRSS(inStatus: text) else {
            throw BenchError(.processFailed, "no VmRSS line in \(path)")
        }
        return value
    }

    /// The `VmRSS:  1234 kB` value of a `/proc/<pid>/status` text, in KiB.
    public static func vmRSS(inStatus text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.dropFirst("VmRSS:".count).split(whereSeparator: \.isWhitespace)
            guard let number = fields.first.flatMap({ Int($0) }) else { return nil }
            let unit = fields.dropFirst().first ?? "kB"
            switch unit {
            case "kB": return number
            case "mB", "MB": return number * 1024
            default: return nil
            }
        }
        return nil
    }
}
