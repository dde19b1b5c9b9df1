// Runs the TEST gateway (Sources/ZeebeTestGateway) as its own process for end-to-end tests.
// Prints `port=<port>` on stdout once listening; stops on SIGTERM/SIGINT or when stdin closes.
import ArgumentParser
import Foundation
import ZeebeTestGateway

@main
struct ZeebeTestGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zeebe-test-gateway",
        abstract: "Runs the in-memory Zeebe TEST gateway on loopback (test support, not a Zeebe replacement)."
    )

    @Option(help: "Port on 127.0.0.1 (0 picks a free one).")
    var port: Int = 0

    func run() async throws {
        var configuration = TestGatewayConfiguration()
        configuration.port = port
        try await withTestGateway(configuration: configuration) { gateway in
            FileHandle.standardOutput.write(Data("port=\(gateway.port)\n".utf8))
            await waitForStop()
        }
    }
}
