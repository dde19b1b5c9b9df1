import Synchronization

/// Counts the failed delivery attempts of each job this worker handled, so that the back-off of a job
/// grows with every failure (Zeebe keeps a job's key across retries).
///
/// The count is per worker process: a retry handed to another worker starts that worker's count at one.
/// At most `capacity` jobs are remembered; the least recently failed are forgotten first.
final class FailedJobAttempts: Sendable {
    private struct Entry {
        var failures: Int
        var sequence: UInt64
    }

    private struct State {
        var entries: [Int64: Entry] = [:]
        var sequence: UInt64 = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = max(capacity, 1)
    }

    /// Records one more failure of `job` and returns how many it has had, this one included.
    func recordFailure(of job: Int64) -> Int {
        state.withLock { state in
            state.sequence += 1
            var entry = state.entries[job] ?? Entry(failures: 0, sequence: 0)
            entry.failures += 1
            entry.sequence = state.sequence
            state.entries[job] = entry
            if state.entries.count > capacity {
                // forget the older half at once, so this O(n log n) step runs rarely
                let cut = state.entries.values.map(\.sequence).sorted()[state.entries.count / 2]
                state.entries = state.entries.filter { $0.value.sequence >= cut }
            }
            return entry.failures
        }
    }

    /// Forgets `job` (its outcome was acknowledged).
    func forget(_ job: Int64) {
        _ = state.withLock { $0.entries.removeValue(forKey: job) }
    }

    /// The number of jobs remembered.
    var count: Int { state.withLock { $0.entries.count } }
}
