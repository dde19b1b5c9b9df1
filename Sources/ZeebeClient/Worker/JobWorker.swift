import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Runs a handler for every job of one type: polls (long polling) and, when enabled, streams
/// jobs, the way the official clients do, and completes, fails or throws errors with the outcome.
///
/// Run it as a `Service` next to its ``ZeebeClient``. On graceful shutdown it stops activating
/// jobs and returns once the jobs in flight are finished.
///
/// ```swift
/// let worker = JobWorker(client: client, configuration: .init(jobType: "charge-card")) { job in
///     let order = try job.variables(as: Order.self)
///     try await payments.charge(order)
///     return .complete(try ZeebeVariables(["charged": true]))
/// }
/// let group = ServiceGroup(services: [client, worker], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// Metrics (swift-metrics, dimension `job_type`): `zeebe_worker_jobs_activated_total`,
/// `zeebe_worker_jobs_completed_total`, `zeebe_worker_jobs_failed_total`,
/// `zeebe_worker_jobs_errored_total` (BPMN errors thrown) and the timer
/// `zeebe_worker_job_handler_duration_seconds`.
public final class JobWorker: Service, Sendable {
    /// Whether the worker may activate jobs now: checked before every poll and while a job stream
    /// is open. A worker whose handlers depend on another service (e.g. the affinity worker on its
    /// connection to a replica) pauses activation while that service is unreachable, instead of
    /// activating jobs only to fail them.
    public typealias ActivationCondition = @Sendable () -> Bool

    /// The worker's settings.
    public let configuration: JobWorkerConfiguration
    let client: ZeebeClient
    let handler: JobHandler
    let canActivate: ActivationCondition
    let logger: Logger
    let scheduler: Mutex<JobPollScheduler>
    let metrics: JobWorkerMetrics

    /// Creates a worker; it starts working in ``run()``.
    /// - Parameters:
    ///   - metricsFactory: where metrics go; the bootstrapped `MetricsSystem` by default.
    ///   - activationCondition: while it is false the worker activates no jobs: it starts no poll and
    ///     closes its job stream (reopened once it is true again); jobs a running poll or the draining
    ///     stream still brings are handed back at once. Always true by default.
    public init(
        client: ZeebeClient,
        configuration: JobWorkerConfiguration,
        logger: Logger = Logger(label: "zeebe.worker"),
        metricsFactory: (any MetricsFactory)? = nil,
        activationCondition: @escaping ActivationCondition = { true },
        handler: @escaping JobHandler
    ) {
        self.client = client
        self.configuration = configuration
        self.handler = handler
        self.canActivate = activationCondition
        var logger = logger
        logger[metadataKey: "zeebe.job.type"] = "\(configuration.jobType)"
        self.logger = logger
        self.scheduler = Mutex(
            JobPollScheduler(
                maxJobsActive: configuration.maxJobsActive,
                pollInterval: configuration.pollInterval,
                backoff: configuration.backoff
            )
        )
        self.metrics = JobWorkerMetrics(
            jobType: configuration.jobType, factory: metricsFactory ?? MetricsSystem.factory)
    }

    /// The jobs activated and not yet finished.
    public var jobsInFlight: Int { scheduler.withLock { $0.inFlight } }

    /// Works until graceful shutdown (then drains in-flight jobs) or cancellation.
    public func run() async throws {
        let (jobs, sink) = AsyncStream.makeStream(of: ActivatedJob.self)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await withDiscardingTaskGroup { activation in
                        activation.addTask { await self.pollLoop(into: sink) }
                        if self.configuration.streamEnabled {
                            activation.addTask { await self.streamLoop(into: sink) }
                        }
                    }
                }
                sink.finish()
            }
            for await activated in jobs {
                if activated.handBack {
                    group.addTask { await self.handBack(activated.job) }
                } else {
                    group.addTask { await self.work(on: activated.job, streamed: activated.streamed) }
                }
            }
        }
        logger.debug("job worker stopped")
    }

    private func pollLoop(into sink: AsyncStream<ActivatedJob>.Continuation) async {
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            guard canActivate() else {
                await waitUntilActivationAllowed(by: "polling")
                continue
            }
            let action = scheduler.withLock { $0.nextPollAction() }
            switch action {
            case .wait(let delay):
                try? await Task.sleep(for: delay)
            case .waitForCapacity:
                try? await Task.sleep(for: .milliseconds(5))
            case .poll(let maxJobs):
                do {
                    // A long poll is not cut short when activation stops being allowed: cancelling it could
                    // drop a response the gateway has already written, whose jobs would then stay locked to
                    // this worker until their timeout. Jobs it still brings are handed back instead.
                    let activated = try await poll(maxJobs: maxJobs, into: sink)
                    scheduler.withLock { $0.pollCompleted(activated: activated, using: &generator) }
                } catch {
                    let delay = scheduler.withLock { $0.pollFailed(using: &generator) }
                    if Task.isCancelled { return }
                    let zeebeError = ZeebeError.from(error)
                    let level: Logger.Level = zeebeError.code == .resourceExhausted ? .trace : .info
                    logger.log(
                        level: level,
                        "polling for jobs failed; backing off",
                        metadata: ["zeebe.error": "\(zeebeError)", "zeebe.delay": "\(delay)"]
                    )
                }
            }
        }
    }

    private func streamLoop(into sink: AsyncStream<ActivatedJob>.Continuation) async {
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            guard canActivate() else {
                await waitUntilActivationAllowed(by: "the job stream")
                continue
            }
            scheduler.withLock { $0.streamOpening() }
            var failed = false
            do {
                let activity = StreamActivity()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.stream(into: sink, activity: activity) }
                    // closes the stream once activation is no longer allowed, after draining it: the jobs
                    // already pushed to this worker are read and handed back (see stream(into:activity:))
                    group.addTask {
                        while !Task.isCancelled {
                            await self.waitWhileActivationAllowed()
                            let closing = await activity.drained(
                                quiet: Self.streamQuietPeriod, atMost: Self.streamDrainLimit,
                                while: { !self.canActivate() })
                            // allowed again before the stream was drained: keep it
                            if closing { return }
                        }
                    }
                    _ = try await group.next()
                    group.cancelAll()
                }
            } catch {
                failed = true
                if !Task.isCancelled {
                    logger.debug("job stream failed", metadata: ["zeebe.error": "\(ZeebeError.from(error))"])
                }
            }
            let delay = scheduler.withLock { $0.streamEnded(failed: failed, using: &generator) }
            if delay > .zero {
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// One ActivateJobs call. The jobs of each response message are handed over as it arrives, so an
    /// error later in the long poll does not drop jobs already activated. Returns how many there were.
    private func poll(maxJobs: Int32, into sink: AsyncStream<ActivatedJob>.Continuation) async throws -> Int {
        try await client.activateJobs(
            type: configuration.jobType,
            worker: configuration.workerName,
            maxJobsToActivate: maxJobs,
            timeout: configuration.jobTimeout,
            requestTimeout: configuration.requestTimeout,
            fetchVariables: configuration.fetchVariables,
            tenantIds: configuration.tenantIds
        ) { jobs in
            self.metrics.activated.increment(by: jobs.count)
            // activation stopped being allowed while the poll ran: these jobs go back to Zeebe now
            guard self.canActivate() else {
                for job in jobs { sink.yield(ActivatedJob(job: job, streamed: false, handBack: true)) }
                return
            }
            self.scheduler.withLock { $0.jobsPolled(jobs.count) }
            for job in jobs { sink.yield(ActivatedJob(job: job, streamed: false)) }
        }
    }

    /// One job stream, until the gateway closes it (or it fails, or the task is cancelled).
    private func stream(into sink: AsyncStream<ActivatedJob>.Continuation, activity: StreamActivity) async throws {
        try await client.streamActivatedJobs(
            type: configuration.jobType,
            worker: configuration.workerName,
            timeout: configuration.jobTimeout,
            fetchVariables: configuration.fetchVariables,
            tenantIds: configuration.tenantIds
        ) { job in
            self.metrics.activated.increment()
            activity.received()
            guard self.canActivate() else {
                // read on at once: every job already pushed here goes back to Zeebe now
                sink.yield(ActivatedJob(job: job, streamed: true, handBack: true))
                return
            }
            self.scheduler.withLock {
                $0.jobStreamed()
                $0.streamDelivered()
            }
            sink.yield(ActivatedJob(job: job, streamed: true))
            // Read the next job only when there is room: HTTP/2 flow control does the rest. Once
            // activation is no longer allowed, the jobs still coming are handed back instead.
            while !self.scheduler.withLock({ $0.hasCapacity }), self.canActivate() {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// After activation stopped being allowed, the job stream is still read until no job came for this
    /// long, so that the jobs already pushed to this worker (up to the HTTP/2 window) are handed back
    /// instead of staying locked until their timeout.
    static let streamQuietPeriod = Duration.milliseconds(300)
    /// The longest such drain.
    static let streamDrainLimit = Duration.seconds(5)

    /// Hands a pushed job back to Zeebe at once (failed with its retries unchanged and no back-off),
    /// as the Java client does with a job it has no capacity for: activation is no longer allowed, so
    /// another worker should have it now rather than after its timeout.
    private func handBack(_ job: ZeebeJob) async {
        do {
            try await client.failJob(
                job.key, retries: job.retries,
                errorMessage: "handed back by worker '\(configuration.workerName)': it cannot take jobs now",
                retryBackOff: .zero, jobDeadline: job.deadline)
            metrics.failed.increment()
            logger.debug("handed a pushed job back", metadata: ["zeebe.job": "\(job.key)"])
        } catch {
            logger.debug(
                "could not hand a pushed job back; it is activatable again after its timeout",
                metadata: ["zeebe.job": "\(job.key)", "zeebe.error": "\(ZeebeError.from(error))"])
        }
    }

    /// Returns once ``ActivationCondition`` holds again (or the task is cancelled), logging the pause.
    private func waitUntilActivationAllowed(by activity: String) async {
        logger.info("activation paused: \(activity) waits until the worker may take jobs again")
        while !Task.isCancelled, !canActivate() {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if !Task.isCancelled {
            logger.info("activation resumed: \(activity) takes jobs again")
        }
    }

    /// Returns as soon as ``ActivationCondition`` no longer holds (or the task is cancelled).
    private func waitWhileActivationAllowed() async {
        while !Task.isCancelled, canActivate() {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func work(on job: ZeebeJob, streamed: Bool) async {
        defer {
            scheduler.withLock { streamed ? $0.streamedJobFinished() : $0.jobFinished() }
        }
        var logger = self.logger
        logger[metadataKey: "zeebe.job"] = "\(job.key)"
        logger.trace("handling job")
        let start = ContinuousClock.now
        let outcome: JobOutcome
        do {
            outcome = try await handler(job)
        } catch {
            if Task.isCancelled {
                // The worker was cancelled (not shut down gracefully): do not spend a retry; the
                // job's lock runs out and it is handed out again.
                logger.debug("handler cancelled; leaving the job to its timeout")
                return
            }
            outcome = .fail(
                message: "\(error)", retries: job.retries - 1, retryBackOff: configuration.failureRetryBackOff)
        }
        let elapsed = ContinuousClock.now - start
        metrics.handlerDuration.recordNanoseconds(
            elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        )
        do {
            switch outcome {
            case .complete(let variables):
                try await client.completeJob(job.key, variables: variables, jobDeadline: job.deadline)
                metrics.completed.increment()
            case .fail(let message, let retries, let retryBackOff):
                try await client.failJob(
                    job.key,
                    retries: retries ?? (job.retries - 1),
                    errorMessage: message,
                    retryBackOff: retryBackOff,
                    jobDeadline: job.deadline
                )
                metrics.failed.increment()
            case .throwError(let code, let message, let variables):
                try await client.throwError(
                    job.key, errorCode: code, errorMessage: message, variables: variables, jobDeadline: job.deadline)
                metrics.errored.increment()
            }
        } catch let error as ZeebeError where error.code == .notFound {
            logger.debug(
                "job is gone (timed out or canceled); dropping the outcome", metadata: ["zeebe.error": "\(error)"])
        } catch {
            logger.warning("could not report the job outcome", metadata: ["zeebe.error": "\(ZeebeError.from(error))"])
        }
    }
}

/// A job on its way from activation to its handler, whether the job stream pushed it, and whether it
/// goes back to Zeebe unhandled (pushed while activation was not allowed).
struct ActivatedJob: Sendable {
    let job: ZeebeJob
    let streamed: Bool
    var handBack = false
}

/// When a job stream last delivered a job, to drain it before closing.
final class StreamActivity: Sendable {
    private let last = Mutex(ContinuousClock.now)

    /// A job arrived.
    func received() { last.withLock { $0 = .now } }

    /// Waits while `condition` holds until no job arrived for `quiet`, at most `limit`: true then (the
    /// stream is drained, or the limit is reached), false as soon as `condition` no longer holds.
    func drained(quiet: Duration, atMost limit: Duration, while condition: () -> Bool) async -> Bool {
        let start = ContinuousClock.now
        received()
        while !Task.isCancelled, ContinuousClock.now - start < limit {
            guard condition() else { return false }
            if ContinuousClock.now - last.withLock({ $0 }) >= quiet { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}

/// The worker's swift-metrics instruments.
struct JobWorkerMetrics: Sendable {
    let activated: Counter
    let completed: Counter
    let failed: Counter
    let errored: Counter
    let handlerDuration: Metrics.Timer

    init(jobType: String, factory: any MetricsFactory) {
        let dimensions = [("job_type", jobType)]
        activated = Counter(label: "zeebe_worker_jobs_activated_total", dimensions: dimensions, factory: factory)
        completed = Counter(label: "zeebe_worker_jobs_completed_total", dimensions: dimensions, factory: factory)
        failed = Counter(label: "zeebe_worker_jobs_failed_total", dimensions: dimensions, factory: factory)
        errored = Counter(label: "zeebe_worker_jobs_errored_total", dimensions: dimensions, factory: factory)
        handlerDuration = Metrics.Timer(
            label: "zeebe_worker_job_handler_duration_seconds",
            dimensions: dimensions,
            factory: factory
        )
    }
}
