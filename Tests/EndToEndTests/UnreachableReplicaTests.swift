import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import ZeebeClient
import ZeebeTestGateway

extension EndToEndTests {
    /// A worker that cannot reach any replica never completes a job.
    @Suite("no replica reachable")
    struct UnreachableReplicaTests {
        /// With none of its three replica URLs answering, the worker fails every job (the test gateway,
        /// a separate process, shows each failure with the worker's message, the retries going down, and
        /// finally an incident), completes none, and reports itself not ready.
        @Test func workerWithoutAnyReplicaFailsJobsAndCompletesNone() async throws {
            try await withChildProcessSet { set in
                let gateway = try await TestGatewayProcess.start(in: set)
                let urls = try (0..<3).flatMap { _ in
                    ["--affinity-url", "ws://127.0.0.1:\(try closedLoopbackPort())/v1/ws"]
                }
                let worker = try await set.start(
                    "affinity-worker", urls + ["--host", "127.0.0.1", "--port", "0", "--failure-backoff", "200ms"],
                    name: "worker", environment: gateway.zeebeEnvironment)
                var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
                configuration.transportSecurity = .plaintext
                let count = 5
                let keys = try await withZeebeClient(configuration: configuration) { zeebe in
                    _ = try await zeebe.deployResources(EndToEndTests.publishOnlyProcess)
                    var keys: Set<String> = []
                    for index in 0..<count {
                        let instance = try await zeebe.createProcessInstance(
                            bpmnProcessId: "publish-only", variables: try ZeebeVariables(["index": index]))
                        keys.insert(String(instance.processInstanceKey))
                    }
                    return keys
                }
                let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: stackHTTPConfiguration())
                do {
                    // Each instance's job is failed until its 3 retries are used up: an incident.
                    var engine = try await gateway.engine(http)
                    let allIncidents = try await eventually(timeout: .seconds(60)) {
                        engine = try await gateway.engine(http)
                        let jobs = engine.jobs.filter { keys.contains($0.processInstanceKey) }
                        return jobs.count == count && jobs.allSatisfy { $0.state == .incident }
                    }
                    let jobs = engine.jobs.filter { keys.contains($0.processInstanceKey) }
                    #expect(allIncidents, "\(jobs)\nworker log:\n\(worker.log)")
                    for job in jobs {
                        #expect(job.failures.map(\.retries) == [2, 1, 0], "\(job)")
                        #expect(
                            job.failures.allSatisfy {
                                $0.message.contains("outcome not acknowledged by the affinity service")
                            },
                            "\(job.failures)")
                        #expect(job.retries == 0)
                        #expect(job.incidentMessage?.contains("outcome not acknowledged") == true, "\(job)")
                    }
                    #expect(Set(engine.incidents.map(\.processInstanceKey)) == keys, "\(engine.incidents)")
                    #expect(engine.failedJobKeys.count == 3 * count)
                    #expect(engine.completedJobKeys.isEmpty)
                    #expect(engine.instances.filter { keys.contains($0.key) }.allSatisfy { $0.state == .active })
                    let ready = try await http.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(worker.port)/health/ready"), timeout: .seconds(10))
                    #expect(ready.status == .serviceUnavailable)
                    try await http.shutdown()
                } catch {
                    try? await http.shutdown()
                    throw error
                }
            }
        }
    }
}
