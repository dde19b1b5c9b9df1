public import AffinityClient
import AffinityZeebe
import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle
public import ZeebeClient

/// The demo REST front-end as services: the Zeebe client, the affinity session, the deployment of
/// the example processes, the job worker of the order process's first task, and the HTTP server.
///
/// - `POST /process/{bpmnProcessId}` (JSON object body = variables): 200 with the outcome variables,
///   504 `{"error":"timeout","processInstanceKey":"K"}` when no outcome came in time. A 200 carries
///   the key in the `x-process-instance-key` header.
/// - `POST /message/{name}` (`{"correlationKey":..., "processInstanceKey":"K", "variables":{...}}`):
///   200 with the next outcome of that instance, 504 as above.
/// - `GET /health/live`, `GET /health/ready` (ready once the processes are deployed and the session is connected).
public struct DemoApplication: Sendable {
    /// The services to run, in start order (a `ServiceGroup` stops them in reverse).
    public let services: [any Service]
    /// The Zeebe client.
    public let zeebe: ZeebeClient
    /// The affinity session.
    public let session: AffinitySession

    /// Builds the services.
    /// - Parameter onListening: called with the HTTP port once the server listens.
    /// - Throws: ``ZeebeError`` `INVALID_CONFIGURATION` when the Zeebe transport cannot be set up.
    public init(
        configuration: DemoConfiguration, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws {
        let zeebe = try ZeebeClient(configuration: configuration.zeebe, logger: logger)
        let session = AffinitySession(configuration: configuration.affinity, logger: logger)
        let client = AffinityZeebeClient(zeebe: zeebe, session: session)
        var services: [any Service] = [zeebe, session]
        let deployment = ExampleDeployment(zeebe: zeebe, logger: logger)
        if configuration.deployExamples { services.append(deployment) }
        let routes = DemoRoutes(
            client: client, timeout: configuration.timeout, maxBodyBytes: configuration.maxBodyBytes, logger: logger,
            isReady: { (!configuration.deployExamples || deployment.isDeployed) && session.connectedReplica != nil })
        let router = Router()
        routes.register(on: router)
        services.append(
            Application(
                router: router,
                configuration: ApplicationConfiguration(
                    address: .hostname(configuration.host, port: configuration.port), serverName: "affinity-demo"),
                onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
                logger: logger))
        if configuration.runPrepareWorker {
            var prepare = JobWorkerConfiguration(jobType: ExampleProcesses.prepareTaskType, workerName: "affinity-demo")
            prepare.maxJobsActive = 64
            services.append(
                JobWorker(client: zeebe, configuration: prepare, logger: logger) { _ in
                    .complete(try ZeebeVariables(["prepared": true]))
                })
        }
        self.services = services
        self.zeebe = zeebe
        self.session = session
    }
}
