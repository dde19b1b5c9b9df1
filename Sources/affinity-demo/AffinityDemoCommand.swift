import AffinityClient
import AffinityDemo
import AffinitySettings
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import ZeebeClient

/// `affinity-demo`: the example REST front-end. Starts a process per request and answers with its outcome.
@main
struct AffinityDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "affinity-demo",
        abstract: "Example REST front-end: POST /process/{id} answers with the process outcome.",
        discussion:
            "Every option can also be set with the environment variable in its help. The Zeebe connection comes from the Camunda variables (ZEEBE_ADDRESS, ZEEBE_CLIENT_ID, ...)."
    )

    @Option(help: "HTTP port (env AFFINITY_DEMO_PORT, default 8082).") var port: String?
    @Option(help: "Interface to listen on (env AFFINITY_DEMO_HOST, default 0.0.0.0).") var host: String?
    @Option(
        name: .customLong("affinity-url"),
        help: "WebSocket URL of the affinity service, repeatable (env AFFINITY_URL, comma-separated).")
    var affinityURLs: [String] = []
    @Option(help: "File holding the client token (env AFFINITY_TOKEN_FILE).") var tokenFile: String?
    @Option(help: "How long a request waits for its outcome (env AFFINITY_TIMEOUT, default 30s).") var timeout: String?
    @Flag(help: "Do not run the worker of the order process's first task (demo-prepare).")
    var noPrepareWorker = false
    @Option(help: "trace, debug, info, notice, warning, error or critical (env AFFINITY_LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        let settings = CommandLineSettings()
        let configuration: DemoConfiguration
        let level: Logger.Level
        do {
            let urls = settings.list(affinityURLs, variable: "AFFINITY_URL")
            guard !urls.isEmpty else { throw SettingsError("--affinity-url or AFFINITY_URL is required") }
            let token = try settings.readableFile(tokenFile, name: "token-file", variable: "AFFINITY_TOKEN_FILE")
                .map { BearerToken.file(path: $0) }
            if let token { _ = try token.resolve() }
            var resolved = DemoConfiguration(
                affinity: AffinityConnectionConfiguration(urls: urls, token: token),
                zeebe: try ZeebeClientConfiguration.fromEnvironment())
            if let number = try settings.integer(port, name: "port", variable: "AFFINITY_DEMO_PORT", in: 0...65535) {
                resolved.port = number
            }
            if let interface = try settings.string(host, name: "host", variable: "AFFINITY_DEMO_HOST") {
                resolved.host = interface
            }
            if let timeout = try settings.duration(timeout, name: "timeout", variable: "AFFINITY_TIMEOUT") {
                resolved.timeout = timeout
            }
            resolved.runPrepareWorker = !noPrepareWorker
            level = try settings.logLevel(logLevel, name: "log-level", variable: "AFFINITY_LOG_LEVEL") ?? .info
            configuration = resolved
        } catch {
            FileHandle.standardError.write(Data("affinity-demo: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let logger = StandardErrorLogging.bootstrap(label: "affinity-demo", level: level)
        let application = try DemoApplication(
            configuration: configuration, logger: logger,
            onListening: { [logger] port in logger.info("listening", metadata: ["affinity.port": "\(port)"]) })
        var group = ServiceGroupConfiguration(
            services: application.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.timeout + .seconds(5)
        try await ServiceGroup(configuration: group).run()
        logger.info("stopped")
    }
}
