import Logging
import ServiceLifecycle
import Synchronization
import ZeebeClient

/// Deploys the example processes once the Zeebe client runs, retrying with back-off until it
/// succeeds (the gateway may start later than the demo); then idles until shutdown.
final class ExampleDeployment: Service, Sendable {
    let zeebe: ZeebeClient
    let logger: Logger
    private let deployed = Atomic<Bool>(false)

    init(zeebe: ZeebeClient, logger: Logger) {
        self.zeebe = zeebe
        self.logger = logger
    }

    /// True once the processes are deployed.
    var isDeployed: Bool { deployed.load(ordering: .acquiring) }

    func run() async throws {
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let result = try await zeebe.deployResources(ExampleProcesses.resources)
                deployed.store(true, ordering: .releasing)
                logger.info(
                    "example processes deployed",
                    metadata: ["zeebe.processes": "\(result.processes.map(\.bpmnProcessId).joined(separator: ","))"])
                break
            } catch {
                logger.warning(
                    "deploying the example processes failed; retrying", metadata: ["zeebe.error": "\(error)"])
                try? await gracefulShutdown(orSleep: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        try? await ServiceLifecycle.gracefulShutdown()
    }

    private func gracefulShutdown(orSleep delay: Duration) async throws {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
    }
}
