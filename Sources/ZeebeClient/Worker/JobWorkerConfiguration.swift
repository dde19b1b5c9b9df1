/// The settings of a ``JobWorker``. Defaults follow the official clients.
public struct JobWorkerConfiguration: Sendable, Hashable {
    /// The job type to work on (`zeebe:taskDefinition type`).
    public var jobType: String
    /// The worker name, for auditing ("default").
    public var workerName: String
    /// At most this many polled jobs in flight (32); with ``streamEnabled`` at most as many streamed jobs
    /// besides, so that a steady stream does not starve the poll that serves the backlog.
    public var maxJobsActive: Int
    /// The job lock: a job not finished in time is handed out again (5 min).
    public var jobTimeout: Duration
    /// The wait after an empty poll (100 ms).
    public var pollInterval: Duration
    /// The long-polling time of one ActivateJobs call (10 s).
    public var requestTimeout: Duration
    /// The variables to fetch (empty: all).
    public var fetchVariables: [String]
    /// The tenants (empty: ``ZeebeClientConfiguration/defaultTenantId``, `<default>`).
    public var tenantIds: [String]
    /// Also open a job stream (job push, Zeebe 8.3+) next to polling (off by default, as in Java).
    public var streamEnabled: Bool
    /// The back-off after errors.
    public var backoff: ExponentialBackoff
    /// The back-off a failed job gets when the handler throws (zero: retry at once).
    public var failureRetryBackOff: Duration

    /// Creates a configuration for `jobType` with the defaults.
    public init(jobType: String, workerName: String = "default") {
        self.jobType = jobType
        self.workerName = workerName
        self.maxJobsActive = 32
        self.jobTimeout = .seconds(300)
        self.pollInterval = .milliseconds(100)
        self.requestTimeout = .seconds(10)
        self.fetchVariables = []
        self.tenantIds = []
        self.streamEnabled = false
        self.backoff = .standard
        self.failureRetryBackOff = .zero
    }
}

/// What a job handler decided.
public enum JobOutcome: Sendable, Hashable {
    /// Complete the job with these variables.
    case complete(ZeebeVariables)
    /// Fail the job: `retries` left afterwards (`nil`: the job's retries − 1), retried after `retryBackOff`.
    case fail(message: String, retries: Int32? = nil, retryBackOff: Duration = .zero)
    /// Throw a BPMN error with this code.
    case throwError(code: String, message: String = "", variables: ZeebeVariables = .empty)

    /// Complete the job without variables.
    public static var complete: JobOutcome { .complete(.empty) }
}

/// A job handler: decides what happens to one job. A handler that throws fails the job with
/// `retries − 1` and the error's description.
public typealias JobHandler = @Sendable (ZeebeJob) async throws -> JobOutcome
