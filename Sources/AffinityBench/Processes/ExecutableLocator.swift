import Foundation

/// Finds the executables the benchmark starts: `affinity-server` in the bin directory, `redis-server`,
/// `redis-cli` and `openssl` on `PATH`.
public enum ExecutableLocator {
    /// The directory holding `affinity-server`: `explicit` (from `--bin-dir`), else `$AFFINITY_BIN_DIR`, else the
    /// directory of the running executable.
    public static func binDirectory(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let directory = environment["AFFINITY_BIN_DIR"], !directory.isEmpty { return directory }
        let own =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: own).deletingLastPathComponent().path
    }

    /// `affinity-server` in `binDirectory`, or an error naming where it looked.
    public static func affinityServer(in binDirectory: String) throws(BenchError) -> String {
        let path = URL(fileURLWithPath: binDirectory).appendingPathComponent("affinity-server").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BenchError(
                .missingExecutable,
                "affinity-server not found at \(path); build it (swift build -c release --product affinity-server) "
                    + "or pass --bin-dir / AFFINITY_BIN_DIR")
        }
        return path
    }

    /// `name` on `PATH`, or an error with the Debian package that provides it.
    public static func onPath(_ name: String, package: String) throws(BenchError) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw BenchError(.missingExecutable, "\(name) is not on PATH (Debian: apt-get install \(package))")
    }
}
