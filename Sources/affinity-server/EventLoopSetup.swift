import NIOCore
import NIOPosix
import Synchronization

/// The threads of a replica: one NIO event loop group runs every listener, the Redis connections and the
/// peer channel, and, once installed here, the Swift tasks too.
///
/// Running Swift concurrency on the event loops means a task resumed by I/O (a Redis reply, a peer's answer,
/// a client's ack) continues on the event loop thread that received it instead of being handed to Swift's
/// separate cooperative pool: fewer threads and thread hops per outcome, which is what keeps the latency of a
/// forwarded outcome low when replicas share CPUs. Nothing in the server blocks a thread (no semaphores, no
/// blocking waits; files are read only at start and on certificate reload), which this requires.
enum EventLoopSetup {
    /// What was set up.
    struct Result: Sendable {
        /// Threads of the event loop group.
        var threads: Int
        /// Whether Swift tasks run on the event loops (false if another global executor was installed first).
        var tasksOnEventLoops: Bool
    }

    /// Sizes `MultiThreadedEventLoopGroup.singleton` to `threads` (nil: NIO's default, the CPUs available to the
    /// process, cgroup CPU limits included) and installs it as Swift concurrency's global executor.
    ///
    /// Call it on the main thread before anything uses NIO; later calls return the first call's result.
    static func install(threads: Int?) -> Result {
        installed.withLock { installed in
            if let installed { return installed }
            if let threads { NIOSingletons.groupLoopCountSuggestion = threads }
            let onEventLoops = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
            let result = Result(threads: NIOSingletons.groupLoopCountSuggestion, tasksOnEventLoops: onEventLoops)
            installed = result
            return result
        }
    }

    private static let installed = Mutex<Result?>(nil)
}
