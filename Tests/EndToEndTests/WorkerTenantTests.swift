import AsyncHTTPClient
import Foundation
import Testing
import ZeebeClient
import ZeebeTestGateway

extension EndToEndTests {
    /// `--tenant-id` and `CAMUNDA_TENANT_ID` reach the worker's job activation.
    @Suite("worker tenants")
    struct WorkerTenantTests {
        /// One `affinity-worker` with `--tenant-id tenant-a`, another with `CAMUNDA_TENANT_ID=tenant-b`, one
        /// `affinity-server`: each worker completes only the jobs of its tenant (the test gateway activates
        /// and pushes jobs by tenant, like a gateway with multi-tenancy), and the job of the default tenant
        /// is left alone.
        @Test func eachWorkerActivatesTheJobsOfItsTenantsOnly() async throws {
            try await withChildProcessSet { set in
                let gateway = try await TestGatewayProcess.start(in: set)
                let server = try await set.start(
                    "affinity-server", ["--host", "127.0.0.1", "--port", "0"], name: "replica")
                let common = [
                    "--affinity-url", "ws://127.0.0.1:\(server.port)/v1/ws", "--host", "127.0.0.1", "--port", "0",
                ]
                let flagged = try await set.start(
                    "affinity-worker", common + ["--tenant-id", "tenant-a"], name: "worker a",
                    environment: gateway.zeebeEnvironment)
                var environment = gateway.zeebeEnvironment
                environment["CAMUNDA_TENANT_ID"] = "tenant-b"
                let variable = try await set.start(
                    "affinity-worker", common, name: "worker b", environment: environment)
                try await withHTTPClient { http in
                    for worker in [flagged, variable] {
                        let probe = WorkerProbe(http: http, worker: worker)
                        #expect(try await eventually(timeout: .seconds(60)) { try await probe.isReady() })
                    }
                    var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
                    configuration.transportSecurity = .plaintext
                    let keys = try await withZeebeClient(configuration: configuration) { zeebe in
                        _ = try await zeebe.deployResources(EndToEndTests.publishOnlyProcess)
                        var keys: [String: String] = [:]
                        for tenant in ["tenant-a", "tenant-b", "<default>"] {
                            let instance = try await zeebe.createProcessInstance(
                                bpmnProcessId: "publish-only", tenantId: tenant)
                            keys[tenant] = String(instance.processInstanceKey)
                        }
                        return keys
                    }
                    var engine = try await gateway.engine(http)
                    let done = try await eventually(timeout: .seconds(60)) {
                        engine = try await gateway.engine(http)
                        return engine.jobs.filter { $0.state == .completed }.count == 2
                    }
                    #expect(done, "\(engine.jobs)\n\(flagged.log)\n\(variable.log)")
                    // the default tenant's job stays with nobody, however long we look
                    try await Task.sleep(for: .seconds(2))
                    engine = try await gateway.engine(http)
                    let byTenant = Dictionary(grouping: engine.jobs, by: \.tenantId)
                    #expect(byTenant["tenant-a"]?.map(\.state) == [.completed])
                    #expect(byTenant["tenant-b"]?.map(\.state) == [.completed])
                    let untouched = try #require(byTenant["<default>"]?.first)
                    #expect(untouched.state == .activatable && untouched.failures.isEmpty, "\(untouched)")
                    #expect(untouched.processInstanceKey == keys["<default>"])
                    #expect(engine.incidents.isEmpty)
                }
            }
        }
    }
}
