public import AffinityClient
public import CoreMetrics
import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle
public import ZeebeClient

/// The affinity worker as services: the Zeebe client, the ``OutcomePublisher``, the job worker for the
/// task type and the health and metrics HTTP server (`/health/live`, `/health/ready`, `/metrics`).
///
/// ```swift
/// let worker = try AffinityWorkerApplication(configuration: configuration, logger: logger,
///                                            renderMetrics: { registry.emitToString() })
/// try await ServiceGroup(services: worker.services, gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// The services are listed in start order; a `ServiceGroup` stops them in reverse: first the job
/// worker (no new jobs; jobs in flight finish), then the HTTP server, the publisher and the Zeebe client.
/// Ready means: connected to a replica.
///
/// The job worker activates jobs only while the publisher is connected to a replica: during an outage
/// of the affinity service it neither polls nor keeps a job stream open, and the jobs it holds when the
/// connection drops are failed with their retries unchanged (``OutcomeJobDecision``), so an outage
/// raises no incident.
public struct AffinityWorkerApplication: Sendable {
    /// The Zeebe gateway client.
    public let zeebe: ZeebeClient
    /// The connection to the affinity service.
    public let publisher: OutcomePublisher
    /// The job worker for ``AffinityWorkerConfiguration/taskType``.
    public let jobWorker: JobWorker
    /// The services to run, in start order.
    public let services: [any Service]

    /// Builds the services.
    ///
    /// - Parameters:
    ///   - renderMetrics: the Prometheus text served at `/metrics`.
    ///   - metricsFactory: where the worker's metrics go; the bootstrapped factory by default.
    ///   - onListening: called with the health port once the HTTP server listens.
    /// - Throws: ``ZeebeError`` `INVALID_CONFIGURATION` when the Zeebe transport cannot be set up.
    public init(
        configuration: AffinityWorkerConfiguration, logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        renderMetrics: @escaping @Sendable () -> String = { "" },
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws {
        let zeebe = try ZeebeClient(configuration: configuration.zeebe, logger: logger)
        let publisher = OutcomePublisher(
            configuration: configuration.affinity, workerID: "\(configuration.workerName)-\(UUIDText.random())",
            logger: logger, metricsFactory: metricsFactory)
        var workerConfiguration = JobWorkerConfiguration(
            jobType: configuration.taskType, workerName: configuration.workerName)
        workerConfiguration.maxJobsActive = configuration.maxJobs
        workerConfiguration.fetchVariables = configuration.fetchVariables
        workerConfiguration.failureRetryBackOff = configuration.failureBackoff
        workerConfiguration.jobTimeout = configuration.jobTimeout
        workerConfiguration.streamEnabled = configuration.streamJobs
        workerConfiguration.tenantIds = configuration.tenantIds
        let handler = OutcomeJobHandler(
            publisher: publisher, deliveryTimeout: configuration.deliveryTimeout,
            failureBackoff: FailureBackoff(
                initial: configuration.failureBackoff, maximum: configuration.failureBackoffMax),
            logger: logger)
        let jobWorker = JobWorker(
            client: zeebe, configuration: workerConfiguration, logger: logger, metricsFactory: metricsFactory,
            activationCondition: { publisher.canPublish }, handler: { try await handler.handle($0) })
        let router = Router()
        router.get("/health/live") { _, _ in HTTPResponse.Status.ok }
        router.get("/health/ready") { _, _ -> Response in
            Response(status: publisher.isConnected ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: renderMetrics())))
        }
        let http = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "affinity-worker"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        self.zeebe = zeebe
        self.publisher = publisher
        self.jobWorker = jobWorker
        self.services = [zeebe, publisher, http, jobWorker]
    }
}
