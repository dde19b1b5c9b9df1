import AffinityTestSupport
import Foundation
import MetricsTestKit
import Testing
import ZeebeClient
import ZeebeTestGateway

@Suite struct JobWorkerMetricsTests {
    @Test func countsActivatedCompletedFailedAndTimesHandlers() async throws {
        let metrics = TestMetrics()
        try await withGatewayAndClientService { client, gateway in
            var configuration = JobWorkerConfiguration(jobType: "metered")
            configuration.requestTimeout = .milliseconds(300)
            let worker = JobWorker(client: client, configuration: configuration, metricsFactory: metrics) { job in
                let input = try job.variables(as: [String: Bool].self)
                return input["ok"] == true ? .complete : .fail(message: "not ok", retries: 0)
            }
            try await withServices([client, worker]) {
                _ = try await client.deployResource(
                    name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("metered")]))
                for ok in [true, true, false] {
                    _ = try await client.createProcessInstance(
                        bpmnProcessId: "p", variables: try ZeebeVariables(["ok": ok]))
                }
                #expect(
                    try await eventually {
                        gateway.engine.completedJobKeys.count == 2 && gateway.engine.incidents.count == 1
                    })
            }
        }
        let dimensions = [("job_type", "metered")]
        #expect(try metrics.expectCounter("zeebe_worker_jobs_activated_total", dimensions).totalValue == 3)
        #expect(try metrics.expectCounter("zeebe_worker_jobs_completed_total", dimensions).totalValue == 2)
        #expect(try metrics.expectCounter("zeebe_worker_jobs_failed_total", dimensions).totalValue == 1)
        #expect(try metrics.expectTimer("zeebe_worker_job_handler_duration_seconds", dimensions).values.count == 3)
    }
}

@Suite struct TestGatewayExecutableTests {
    @Test func runsAsAProcessAndPrintsItsPort() async throws {
        let executable = builtProductsDirectory().appendingPathComponent("zeebe-test-gateway")
        try #require(
            FileManager.default.isExecutableFile(atPath: executable.path),
            "build zeebe-test-gateway first (swift build); looked in \(executable.path)"
        )
        let process = Process()
        process.executableURL = executable
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        var line = ""
        let handle = output.fileHandleForReading
        while !line.hasSuffix("\n") {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty { break }
            line += String(decoding: byte, as: UTF8.self)
        }
        let port = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("port=".count)))
        let configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: port)
        let topology = try await withZeebeClient(configuration: configuration) { try await $0.topology() }
        #expect(topology.gatewayVersion == "8.8.0-test")
        // Closing stdin stops it.
        try input.fileHandleForWriting.close()
        let start = ContinuousClock.now
        while process.isRunning, ContinuousClock.now - start < .seconds(10) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
    }
}
