import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import ZeebeClient
import ZeebeTestGateway

extension EndToEndTests {
    /// A worker that cannot reach any replica takes no job.
    @Suite("no replica reachable")
    struct UnreachableReplicaTests {
        /// With none of its three replica URLs answering, the worker activates no job at all (neither by
        /// polling nor by a job stream), so it fails none, completes none and raises no incident: the jobs
        /// wait, activatable, with all their retries, for a worker that can deliver. It reports itself not
        /// ready. (Before, it activated every job, failed it with `retries - 1` and raised an incident for
        /// each once the retries were used up.)
        @Test func workerWithoutAnyReplicaActivatesNoJob() async throws {
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
                    // The old worker had raised every incident well within 10 s (3 failures, 200 ms back-off).
                    let observation = ContinuousClock.now + .seconds(10)
                    var engine = try await gateway.engine(http)
                    while ContinuousClock.now < observation {
                        engine = try await gateway.engine(http)
                        let jobs = engine.jobs.filter { keys.contains($0.processInstanceKey) }
                        #expect(jobs.count == count)
                        let touched = jobs.filter { $0.state != .activatable || !$0.failures.isEmpty }
                        #expect(touched.isEmpty, "a worker without a replica took jobs: \(touched)\n\(worker.log)")
                        if !touched.isEmpty { break }
                        try await Task.sleep(for: .milliseconds(500))
                    }
                    #expect(engine.incidents.isEmpty, "\(engine.incidents)")
                    #expect(engine.failedJobKeys.isEmpty)
                    #expect(engine.completedJobKeys.isEmpty)
                    #expect(engine.jobs.allSatisfy { $0.retries == 3 }, "\(engine.jobs)")
                    #expect(engine.openJobStreams == 0, "the worker kept a job stream open without a replica")
                    let metrics = try await http.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(worker.port)/metrics"), timeout: .seconds(10))
                    let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
                    let activated = text.split(separator: "\n").filter {
                        $0.hasPrefix("zeebe_worker_jobs_activated_total") && !$0.hasSuffix(" 0")
                    }
                    #expect(activated.isEmpty, "\(activated)")
                    #expect(worker.log.contains("activation paused"), "\(worker.log)")
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
