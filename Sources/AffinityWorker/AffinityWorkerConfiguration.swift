public import AffinityClient
public import ZeebeClient

/// The settings of an affinity worker (the `affinity-worker` executable's flags).
public struct AffinityWorkerConfiguration: Sendable {
    /// The affinity service: the Kubernetes Service URL or several replica URLs, and the worker token.
    public var affinity: AffinityConnectionConfiguration
    /// The Zeebe gateway connection (from the Camunda environment variables in the executable).
    public var zeebe: ZeebeClientConfiguration
    /// The job type serviced (`publish-outcome`).
    public var taskType: String = "publish-outcome"
    /// At most this many jobs in flight (32).
    public var maxJobs: Int = 32
    /// The variables fetched with each job, and so sent as the outcome (empty: all).
    public var fetchVariables: [String] = []
    /// The worker name Zeebe records on activated jobs.
    public var workerName: String = "affinity-worker"
    /// How long one delivery waits for the service's answer before the job is failed (15 s).
    public var deliveryTimeout: Duration = .seconds(15)
    /// The job lock (60 s): a worker that crashes holds its jobs, and so their outcomes, this long
    /// before Zeebe hands them to another worker. Keep it above ``deliveryTimeout``.
    public var jobTimeout: Duration = .seconds(60)
    /// Also take jobs from a job stream (job push, Zeebe 8.3+) next to polling (on: the worker's latency
    /// lands on the user's HTTP request).
    public var streamJobs: Bool = true
    /// The tenants whose jobs are activated (empty: the default tenant, `<default>`).
    public var tenantIds: [String] = []
    /// The retry back-off of a job whose outcome was not acknowledged, for its first failure (1 s);
    /// doubled for every further failure of the same job up to ``failureBackoffMax``, with ±20 % jitter.
    public var failureBackoff: Duration = .seconds(1)
    /// The largest retry back-off (1 min).
    public var failureBackoffMax: Duration = .seconds(60)
    /// The host the health and metrics server binds ("0.0.0.0").
    public var host: String = "0.0.0.0"
    /// The health and metrics port (8081; 0 picks a free one).
    public var port: Int = 8081

    /// Creates a configuration with the defaults.
    public init(affinity: AffinityConnectionConfiguration, zeebe: ZeebeClientConfiguration) {
        self.affinity = affinity
        self.zeebe = zeebe
    }
}
