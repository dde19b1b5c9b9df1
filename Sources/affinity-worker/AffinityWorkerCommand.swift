import AffinityClient
import AffinitySettings
import AffinityWorker
import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals
import ZeebeClient

/// `affinity-worker`: services the `publish-outcome` task type, delivering each job's variables as the
/// outcome of its process instance and completing the job only once a replica acknowledged it.
@main
struct AffinityWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "affinity-worker",
        abstract: "Delivers Zeebe process outcomes to the affinity service.",
        discussion:
            "Every option can also be set with the environment variable in its help. The Zeebe connection comes from the Camunda variables (ZEEBE_ADDRESS, ZEEBE_CLIENT_ID, ...)."
    )

    @Option(
        name: .customLong("affinity-url"),
        help: "WebSocket URL of the affinity service, repeatable (env AFFINITY_URL, comma-separated).")
    var affinityURLs: [String] = []
    @Option(help: "File holding the worker token (env AFFINITY_TOKEN_FILE).") var tokenFile: String?
    @Option(help: "The job type to service (env AFFINITY_TASK_TYPE, default publish-outcome).") var taskType: String?
    @Option(help: "Jobs in flight at most (env AFFINITY_MAX_JOBS, default 32).") var maxJobs: String?
    @Option(help: "Variables to fetch and send, comma-separated (env AFFINITY_FETCH_VARIABLES, default all).")
    var fetchVariables: String?
    @Option(help: "Health and metrics port (env AFFINITY_PORT, default 8081).") var port: String?
    @Option(help: "Health and metrics interface (env AFFINITY_HOST, default 0.0.0.0).") var host: String?
    @Option(help: "Wait for the service's answer this long (env AFFINITY_DELIVERY_TIMEOUT, default 15s).")
    var deliveryTimeout: String?
    @Option(
        help:
            "Back-off before Zeebe retries a job that was not acknowledged, doubled per failed attempt (env AFFINITY_FAILURE_BACKOFF, default 1s)."
    )
    var failureBackoff: String?
    @Option(help: "Largest failure back-off (env AFFINITY_FAILURE_BACKOFF_MAX, default 1m).")
    var failureBackoffMax: String?
    @Option(
        help:
            "The job lock: a crashed worker holds its jobs this long, above the delivery timeout (env AFFINITY_JOB_TIMEOUT, default 60s)."
    )
    var jobTimeout: String?
    @Flag(
        inversion: .prefixedNo,
        help: "Take jobs from a job stream next to polling (env AFFINITY_STREAM_JOBS=true|false, default on).")
    var stream: Bool?
    @Option(
        name: .customLong("tenant-id"),
        help: "Tenant whose jobs are activated, repeatable (env CAMUNDA_TENANT_ID, comma-separated; default <default>)."
    )
    var tenantIds: [String] = []
    @Option(help: "trace, debug, info, notice, warning, error or critical (env AFFINITY_LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        let settings = CommandLineSettings()
        let configuration: AffinityWorkerConfiguration
        let level: Logger.Level
        do {
            var resolved = AffinityWorkerConfiguration(
                affinity: try .fromCommandLine(urls: affinityURLs, tokenFile: tokenFile, settings: settings),
                zeebe: try ZeebeClientConfiguration.fromEnvironment())
            if let type = try settings.string(taskType, name: "task-type", variable: "AFFINITY_TASK_TYPE") {
                resolved.taskType = type
            }
            if let count = try settings.integer(
                maxJobs, name: "max-jobs", variable: "AFFINITY_MAX_JOBS", in: 1...10_000)
            {
                resolved.maxJobs = count
            }
            resolved.fetchVariables = settings.list(
                fetchVariables.map { [$0] } ?? [], variable: "AFFINITY_FETCH_VARIABLES"
            )
            .flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty }
            if let number = try settings.integer(port, name: "port", variable: "AFFINITY_PORT", in: 0...65535) {
                resolved.port = number
            }
            if let interface = try settings.string(host, name: "host", variable: "AFFINITY_HOST") {
                resolved.host = interface
            }
            if let timeout = try settings.duration(
                deliveryTimeout, name: "delivery-timeout", variable: "AFFINITY_DELIVERY_TIMEOUT")
            {
                resolved.deliveryTimeout = timeout
            }
            if let backoff = try settings.duration(
                failureBackoff, name: "failure-backoff", variable: "AFFINITY_FAILURE_BACKOFF")
            {
                resolved.failureBackoff = backoff
            }
            if let backoff = try settings.duration(
                failureBackoffMax, name: "failure-backoff-max", variable: "AFFINITY_FAILURE_BACKOFF_MAX")
            {
                resolved.failureBackoffMax = backoff
            }
            guard resolved.failureBackoffMax >= resolved.failureBackoff else {
                throw SettingsError("the failure back-off maximum must not be below its initial value")
            }
            if let timeout = try settings.duration(jobTimeout, name: "job-timeout", variable: "AFFINITY_JOB_TIMEOUT") {
                resolved.jobTimeout = timeout
            }
            guard resolved.jobTimeout > resolved.deliveryTimeout else {
                throw SettingsError(
                    "the job timeout (\(resolved.jobTimeout)) must be longer than the delivery timeout (\(resolved.deliveryTimeout))"
                )
            }
            resolved.streamJobs = try Self.streamJobs(flag: stream, settings: settings)
            resolved.tenantIds = settings.list(tenantIds, variable: "CAMUNDA_TENANT_ID")
            level = try settings.logLevel(logLevel, name: "log-level", variable: "AFFINITY_LOG_LEVEL") ?? .info
            configuration = resolved
        } catch {
            FileHandle.standardError.write(Data("affinity-worker: \(error)\n".utf8))
            throw ExitCode(2)
        }

        let logger = StandardErrorLogging.bootstrap(label: "affinity-worker", level: level)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let application = try AffinityWorkerApplication(
            configuration: configuration, logger: logger,
            renderMetrics: { registry.emitToString() },
            onListening: { [logger] port in
                logger.info(
                    "listening", metadata: ["affinity.port": "\(port)", "zeebe.job.type": "\(configuration.taskType)"])
            })
        var group = ServiceGroupConfiguration(
            services: application.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.deliveryTimeout + .seconds(5)
        try await ServiceGroup(configuration: group).run()
        logger.info("stopped")
    }

    /// `--stream` / `--no-stream`, else `AFFINITY_STREAM_JOBS` (`true`/`false`), else on.
    static func streamJobs(flag: Bool?, settings: CommandLineSettings) throws -> Bool {
        if let flag { return flag }
        guard let setting = settings.value(nil, name: "stream", variable: "AFFINITY_STREAM_JOBS") else { return true }
        switch setting.text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw SettingsError("AFFINITY_STREAM_JOBS must be true or false, got \"\(setting.text)\"")
        }
    }
}
