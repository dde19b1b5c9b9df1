import AffinityClient
import AffinityProtocol
import AffinityZeebe
import Foundation
import Logging
import Testing
import ZeebeClient
import ZeebeTestGateway

/// `AffinityZeebeClient` against the test gateway and an affinity-server process, with no worker:
/// the timeout carries the key, and neither a timeout nor a cancellation leaves a subscription behind.
@Suite("AffinityZeebeClient")
struct AffinityZeebeClientTests {
    func withClient(_ body: (AffinityZeebeClient, TestGateway) async throws -> Void) async throws {
        try await withTestGateway { gateway in
            try await withChildProcess("affinity-server", ["--host", "127.0.0.1", "--port", "0"]) { server in
                var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
                configuration.transportSecurity = .plaintext
                let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
                try await withZeebeClient(configuration: configuration) { zeebe in
                    _ = try await zeebe.deployResources(EndToEndTests.publishOnlyProcess)
                    let session = AffinitySession(
                        configuration: .init(url: "ws://127.0.0.1:\(server.port)/v1/ws"), logger: logger)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await session.run() }
                        defer { group.cancelAll() }
                        let connected = await eventually(timeout: .seconds(10)) { session.connectedReplica != nil }
                        try #require(connected)
                        try await body(AffinityZeebeClient(zeebe: zeebe, session: session), gateway)
                    }
                }
            }
        }
    }

    @Test func timeoutThrowsTheKeyAndUnsubscribes() async throws {
        try await withClient { client, _ in
            do {
                _ = try await client.createProcessInstanceWithAffinity(
                    bpmnProcessId: "publish-only", variables: try ZeebeVariables(["a": 1]), timeout: .milliseconds(300))
                Issue.record("no worker runs, so no outcome can come")
            } catch let error as AffinityClientError {
                #expect(error.code == .timeout)
                #expect(error.processInstanceKey != nil)
            }
            #expect(client.session.pendingState.isIdle, "\(client.session.pendingState)")
        }
    }

    @Test func cancellationUnsubscribes() async throws {
        try await withClient { client, _ in
            let request = Task {
                try await client.createProcessInstanceWithAffinity(bpmnProcessId: "publish-only", timeout: .seconds(30))
            }
            let subscribed = await eventually(timeout: .seconds(10)) { client.session.pendingState.keys == 1 }
            #expect(subscribed)
            request.cancel()
            await #expect(throws: CancellationError.self) { _ = try await request.value }
            #expect(client.session.pendingState.isIdle, "\(client.session.pendingState)")
        }
    }

    @Test func chatMessageTimeoutCarriesTheGivenKey() async throws {
        try await withClient { client, _ in
            let instance = try await client.zeebe.createProcessInstance(bpmnProcessId: "publish-only")
            do {
                _ = try await client.publishMessageWithAffinity(
                    name: "nobody-waits", correlationKey: "c", processInstanceKey: instance.processInstanceKey,
                    timeout: .milliseconds(300))
                Issue.record("no outcome can come")
            } catch let error as AffinityClientError {
                #expect(error.code == .timeout)
                #expect(error.processInstanceKey == ProcessInstanceKey(instance.processInstanceKey))
            }
            #expect(client.session.pendingState.isIdle, "\(client.session.pendingState)")
        }
    }

    /// The tenant, the version and the process definition key reach the gateway; without a tenant the
    /// default tenant `<default>` is sent, as the official clients do.
    @Test func tenantVersionAndDefinitionKeyReachTheGateway() async throws {
        try await withClient { client, gateway in
            let deployed = try await client.zeebe.deployResources(EndToEndTests.publishOnlyProcess)
            let definition = try #require(deployed.processes.first)
            let attempts: [@Sendable () async throws -> AffinityProcessResult] = [
                {
                    try await client.createProcessInstanceWithAffinity(
                        bpmnProcessId: "publish-only", version: definition.version, tenantId: "tenant-a",
                        timeout: .milliseconds(200))
                },
                {
                    try await client.createProcessInstanceWithAffinity(
                        processDefinitionKey: definition.processDefinitionKey, timeout: .milliseconds(200))
                },
                {
                    try await client.publishMessageWithAffinity(
                        name: "m", correlationKey: "c", processInstanceKey: 2_251_799_813_685_249,
                        tenantId: "tenant-b", timeout: .milliseconds(200))
                },
            ]
            for attempt in attempts {
                await #expect { _ = try await attempt() } throws: { ($0 as? AffinityClientError)?.code == .timeout }
            }
            #expect(gateway.knobs.tenantIds(of: "CreateProcessInstance") == [["tenant-a"], ["<default>"]])
            #expect(gateway.knobs.tenantIds(of: "PublishMessage") == [["tenant-b"]])
            let instances = gateway.engine.inspection().instances
            #expect(instances.count == 2)
            #expect(instances.allSatisfy { $0.bpmnProcessId == "publish-only" && $0.version == definition.version })
            #expect(client.session.pendingState.isIdle, "\(client.session.pendingState)")
        }
    }
}
