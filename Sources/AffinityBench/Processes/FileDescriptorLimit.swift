#if canImport(Glibc)
import Glibc
#endif

/// The `RLIMIT_NOFILE` soft limit of this process, which child processes inherit.
public enum FileDescriptorLimit {
    /// Raises the soft limit to `wanted`; returns the soft limit now in force. Past the hard limit only
    /// when the process may raise that too (root, or `CAP_SYS_RESOURCE`), up to the kernel's `nr_open`.
    @discardableResult
    public static func raise(to wanted: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_max < rlim_t(wanted) {
            var raised = limit
            raised.rlim_max = rlim_t(wanted)
            // refused without the privilege (or above nr_open): the hard limit stays
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            }
        }
        let target = min(rlim_t(wanted), limit.rlim_max)
        if limit.rlim_cur < target {
            limit.rlim_cur = target
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}
