#if canImport(Glibc)
import Glibc
#endif

/// The `RLIMIT_NOFILE` soft limit of this process, which child processes inherit.
public enum FileDescriptorLimit {
    /// Raises the soft limit to `wanted` (at most the hard limit); returns the soft limit now in force.
    @discardableResult
    public static func raise(to wanted: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let target = min(rlim_t(wanted), limit.rlim_max)
        if limit.rlim_cur < target {
            limit.rlim_cur = target
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}
