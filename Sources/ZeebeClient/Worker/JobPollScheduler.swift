/// The poll and back-off decisions of a ``JobWorker``, without I/O or clocks.
///
/// It follows the official clients' worker loop:
/// - it polls when the polled jobs in flight are at or below `round(pollThreshold × maxJobsActive)`,
///   asking for `maxJobsActive − polled in flight` jobs. Streamed jobs do not count here: they have a
///   budget of their own (``hasCapacity``, `maxJobsActive` streamed jobs in flight), so a steady stream
///   does not starve the poll, which alone serves the backlog and jobs back from a timeout or failure;
/// - after an empty poll it waits `pollInterval` (or, while a job stream is open, a growing
///   interval, since the stream delivers new jobs and polling only picks up the backlog);
/// - after a failed poll it backs off: `next = clamp(previous × 1.6, 50 ms, 5 s) ± 10 %`,
///   starting from `pollInterval`; a successful poll resets it;
/// - a failed job stream is reopened after the same back-off, a cleanly closed one at once.
///
/// The worker feeds it events (``pollSucceeded(activated:)``, ``jobFinished()``, ...) and asks
/// it what to do next (``nextPollAction()``).
public struct JobPollScheduler: Sendable {
    /// What the poller should do next.
    public enum PollAction: Sendable, Hashable {
        /// Activate up to this many jobs.
        case poll(maxJobs: Int32)
        /// Sleep this long, then ask again.
        case wait(Duration)
        /// Too many jobs in flight: ask again when one finishes.
        case waitForCapacity
    }

    /// The worker's limits and intervals.
    public let maxJobsActive: Int
    /// The interval after an empty poll.
    public let pollInterval: Duration
    /// The back-off for errors (and for empty polls while a stream is open).
    public let backoff: ExponentialBackoff
    /// Polls start when in-flight jobs are at or below this count.
    public let pollThresholdCount: Int

    /// Jobs activated (by polling or streaming) and not yet finished.
    public var inFlight: Int { polledInFlight + streamedInFlight }
    /// Jobs activated by polling and not yet finished: the poll threshold counts these.
    public private(set) var polledInFlight = 0
    /// Jobs pushed by the job stream and not yet finished.
    public private(set) var streamedInFlight = 0
    /// Whether a poll is running.
    public private(set) var isPolling = false
    /// Whether a job stream is believed open.
    public private(set) var isStreamOpen = false
    private var pendingDelay: Duration?
    private var errorDelay: Duration = .zero
    private var emptyPollDelay: Duration = .zero
    private var streamDelay: Duration = .zero

    /// Creates a scheduler.
    /// - Parameters:
    ///   - maxJobsActive: at most this many jobs in flight (at least 1).
    ///   - pollInterval: the wait after an empty poll.
    ///   - pollThreshold: the fraction of `maxJobsActive` at or below which a poll starts (0.3).
    ///   - backoff: the error back-off (``ExponentialBackoff/standard``).
    public init(
        maxJobsActive: Int,
        pollInterval: Duration,
        pollThreshold: Double = 0.3,
        backoff: ExponentialBackoff = .standard
    ) {
        self.maxJobsActive = max(1, maxJobsActive)
        self.pollInterval = pollInterval
        self.backoff = backoff
        self.pollThresholdCount = Int((pollThreshold * Double(self.maxJobsActive)).rounded())
    }

    /// The next step of the poll loop.
    public mutating func nextPollAction() -> PollAction {
        if let delay = pendingDelay {
            pendingDelay = nil
            return .wait(delay)
        }
        guard !isPolling, polledInFlight <= pollThresholdCount, polledInFlight < maxJobsActive else {
            return .waitForCapacity
        }
        isPolling = true
        return .poll(maxJobs: Int32(maxJobsActive - polledInFlight))
    }

    /// A running poll handed over `count` jobs (one response message); they count as in flight until
    /// ``jobFinished()``, also when the poll fails afterwards.
    public mutating func jobsPolled(_ count: Int) {
        polledInFlight += count
    }

    /// A poll returned `activated` jobs; they count as in flight until ``jobFinished()``.
    public mutating func pollSucceeded(activated: Int, using generator: inout some RandomNumberGenerator) {
        jobsPolled(activated)
        pollCompleted(activated: activated, using: &generator)
    }

    /// A poll ended without error after handing over `activated` jobs with ``jobsPolled(_:)``.
    public mutating func pollCompleted(activated: Int, using generator: inout some RandomNumberGenerator) {
        isPolling = false
        errorDelay = .zero
        if activated > 0 {
            emptyPollDelay = .zero
        } else if isStreamOpen {
            emptyPollDelay = backoff.next(after: max(emptyPollDelay, pollInterval), using: &generator)
            pendingDelay = emptyPollDelay
        } else {
            pendingDelay = pollInterval
        }
    }

    /// A poll failed: back off before the next one. Returns the delay.
    @discardableResult
    public mutating func pollFailed(using generator: inout some RandomNumberGenerator) -> Duration {
        isPolling = false
        errorDelay = backoff.next(after: max(errorDelay, pollInterval), using: &generator)
        pendingDelay = errorDelay
        return errorDelay
    }

    /// Whether a streamed job may be taken now (streamed jobs in flight below `maxJobsActive`).
    public var hasCapacity: Bool { streamedInFlight < maxJobsActive }

    /// A job arrived on the stream.
    public mutating func jobStreamed() {
        streamedInFlight += 1
    }

    /// A polled job's handler finished (completed, failed or errored).
    public mutating func jobFinished() {
        polledInFlight = max(0, polledInFlight - 1)
    }

    /// A streamed job's handler finished.
    public mutating func streamedJobFinished() {
        streamedInFlight = max(0, streamedInFlight - 1)
    }

    /// The job stream is being opened.
    public mutating func streamOpening() {
        isStreamOpen = true
    }

    /// The job stream delivered a job, so it works: reset its back-off.
    public mutating func streamDelivered() {
        streamDelay = .zero
    }

    /// The job stream ended: returns how long to wait before reopening it
    /// (zero after a clean close, the back-off after an error).
    public mutating func streamEnded(failed: Bool, using generator: inout some RandomNumberGenerator) -> Duration {
        isStreamOpen = false
        emptyPollDelay = .zero
        guard failed else {
            streamDelay = .zero
            return .zero
        }
        streamDelay = backoff.next(after: max(streamDelay, pollInterval), using: &generator)
        return streamDelay
    }
}
