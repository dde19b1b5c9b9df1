// Runs the TEST gateway (Sources/ZeebeTestGateway) as its own process for end-to-end tests.
// Prints `port=<port>` and `inspection-port=<port>` on stdout once listening; stops on SIGTERM/SIGINT
// or when stdin closes.
import ArgumentParser
import Foundation
import ZeebeTestGateway

@main
struct ZeebeTestGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zeebe-test-gateway",
        abstract: "Runs the in-memory Zeebe TEST gateway on loopback (test support, not a Zeebe replacement).",
        discussion: """
            TEST SUPPORT ONLY. Serves gateway_protocol.Gateway (plaintext gRPC) on 127.0.0.1:<port>, and a \
            read-only, unauthenticated inspection endpoint (JSON over HTTP) on 127.0.0.1:<inspection-port> \
            so that tests in other processes can read the engine's state (keys are decimal strings):

            GET /engine: every job (state, retries, worker, each FailJob call with its message, the \
            incident message; completed jobs too), every process instance (state, current element, \
            variables), incidents, completed and failed job keys, open job streams.
            GET /engine/jobs/<key>: one job (404 if unknown).
            GET /engine/instances/<key>: one process instance (404 if unknown).

            Once both listen it prints `port=<port>` and `inspection-port=<port>` on stdout, one per line. \
            It stops on SIGTERM or SIGINT, or when its standard input reaches end of file (so it dies with \
            the test process that holds the other end of the pipe).
            """
    )

    @Option(help: "gRPC port on 127.0.0.1 (0 picks a free one).")
    var port: Int = 0

    @Option(help: "Port of the test-only inspection endpoint on 127.0.0.1 (0 picks a free one).")
    var inspectionPort: Int = 0

    func run() async throws {
        var configuration = TestGatewayConfiguration()
        configuration.port = port
        let inspectionPort = self.inspectionPort
        try await withTestGateway(configuration: configuration) { gateway in
            try await withTestGatewayInspectionServer(engine: gateway.engine, port: inspectionPort) { inspection in
                FileHandle.standardOutput.write(Data("port=\(gateway.port)\ninspection-port=\(inspection.port)\n".utf8))
                await waitForStop()
            }
        }
    }
}
