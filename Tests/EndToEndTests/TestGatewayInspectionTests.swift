import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import ZeebeClient
import ZeebeTestGateway

extension EndToEndTests {
    /// The `zeebe-test-gateway` process and its test-only inspection endpoint.
    @Suite("test gateway process")
    struct TestGatewayInspectionTests {
        @Test func inspectionEndpointServesJobsAndInstances() async throws {
            try await withChildProcessSet { set in
                let gateway = try await TestGatewayProcess.start(in: set)
                var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
                configuration.transportSecurity = .plaintext
                let (instanceKey, jobKey) = try await withZeebeClient(configuration: configuration) {
                    zeebe -> (String, String) in
                    _ = try await zeebe.deployResources(EndToEndTests.publishOnlyProcess)
                    let instance = try await zeebe.createProcessInstance(
                        bpmnProcessId: "publish-only", variables: try ZeebeVariables(["orderId": "o-1"]))
                    let jobs = try await zeebe.activateJobs(
                        type: "publish-outcome", worker: "inspector", maxJobsToActivate: 1, timeout: .seconds(60))
                    let job = try #require(jobs.first)
                    try await zeebe.failJob(
                        job.key, retries: 2, errorMessage: "not this time", retryBackOff: .milliseconds(10))
                    return (String(instance.processInstanceKey), String(job.key))
                }
                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                do {
                    let engine = try await gateway.engine(http)
                    let instance = try #require(engine.instances.first { $0.key == instanceKey })
                    #expect(instance.state == .active)
                    #expect(instance.currentElementId == "publish")
                    #expect(instance.variables["orderId"] == .string("o-1"))
                    let job = try #require(engine.jobs.first { $0.key == jobKey })
                    #expect(job.state == .activatable)
                    #expect(job.retries == 2)
                    #expect(job.failures.map(\.message) == ["not this time"])
                    #expect(job.failures.map(\.retries) == [2])
                    #expect(job.failures.map(\.retryBackOffMilliseconds) == [10])
                    #expect(engine.failedJobKeys == [jobKey])
                    func get(_ path: String) async throws -> (Int, Data) {
                        let response = try await http.execute(
                            HTTPClientRequest(url: "http://127.0.0.1:\(gateway.inspectionPort)\(path)"),
                            timeout: .seconds(10))
                        let body = try await response.body.collect(upTo: 1 << 20)
                        return (Int(response.status.code), Data(buffer: body))
                    }
                    let (jobStatus, jobBody) = try await get("/engine/jobs/\(jobKey)")
                    #expect(jobStatus == 200)
                    #expect(try JSONDecoder().decode(InspectedJob.self, from: jobBody) == job)
                    let (instanceStatus, instanceBody) = try await get("/engine/instances/\(instanceKey)")
                    #expect(instanceStatus == 200)
                    #expect(try JSONDecoder().decode(InspectedInstance.self, from: instanceBody) == instance)
                    let (missingStatus, missingBody) = try await get("/engine/jobs/12345")
                    #expect(missingStatus == 404)
                    #expect(String(decoding: missingBody, as: UTF8.self).contains("not_found"))
                    try await http.shutdown()
                } catch {
                    try? await http.shutdown()
                    throw error
                }
                // The gateway stops when its standard input closes (the test process went away).
                set.closeInput(of: gateway.process)
                #expect(await gateway.process.waitForExit(timeout: .seconds(20)) == 0)
            }
        }
    }
}
