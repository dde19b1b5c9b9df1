// The Swift code of README.md's "Use it from your REST front-end" section, compiled with the tests so
// the README cannot drift from the API. Keep both in sync (same code, same order).
import AffinityClient
import AffinityProtocol
import AffinityWorker
import AffinityZeebe
import Logging
import ServiceLifecycle
import UnixSignals
import ZeebeClient

// README: front-end
struct Order: Decodable, Sendable {
    let orderId: String
    let status: String
}

func runFrontEnd(logger: Logger) async throws {
    let zeebe = try ZeebeClient(configuration: try .fromEnvironment(), logger: logger)
    let session = AffinitySession(
        configuration: .init(url: "ws://affinity:8080/v1/ws", token: .file(path: "/etc/affinity/tokens/client-token")),
        logger: logger)
    let affinity = AffinityZeebeClient(zeebe: zeebe, session: session)
    // Add your HTTP server to the same group; its handlers call placeOrder(affinity, ...).
    _ = affinity
    let group = ServiceGroup(services: [zeebe, session], gracefulShutdownSignals: [.sigterm], logger: logger)
    try await group.run()
}

func placeOrder(_ affinity: AffinityZeebeClient, orderId: String) async throws -> (status: Int, body: String) {
    do {
        let result = try await affinity.createProcessInstanceWithAffinity(
            bpmnProcessId: "order-process", variables: try ZeebeVariables(["orderId": orderId]),
            timeout: .seconds(30))
        let order = try result.decode(Order.self)
        return (200, order.status)
    } catch let error as AffinityClientError where error.code == .timeout {
        // The instance keeps running: answer with a link to poll later.
        return (202, "/orders/\(error.processInstanceKey.map { "\($0)" } ?? "")")
    }
}

// README: chat
func sendChatMessage(
    _ affinity: AffinityZeebeClient, chatId: String, processInstanceKey: Int64, text: String
) async throws -> String {
    let answer = try await affinity.publishMessageWithAffinity(
        name: "chat-message", correlationKey: chatId, processInstanceKey: processInstanceKey,
        variables: try ZeebeVariables(["text": text]), timeout: .seconds(30))
    return answer.variablesJSON
}

// README: worker as a library
func runWorker(logger: Logger) async throws {
    var configuration = AffinityWorkerConfiguration(
        affinity: .init(urls: ["ws://affinity:8080/v1/ws"], token: .file(path: "/etc/affinity/tokens/worker-token")),
        zeebe: try .fromEnvironment())
    configuration.taskType = "publish-outcome"
    let worker = try AffinityWorkerApplication(configuration: configuration, logger: logger)
    try await ServiceGroup(services: worker.services, gracefulShutdownSignals: [.sigterm], logger: logger).run()
}
