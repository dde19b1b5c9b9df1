import Foundation
import GRPCCore
import Synchronization
import Testing
import ZeebeClient
import ZeebeTestGateway

/// Back-pressure, leader changes and long polls that fail half-way, against the test gateway.
@Suite struct BackPressureTests {
    static let process = bpmnDocument(processId: "p", steps: [.task("t")])

    /// The broker refuses commands under back-pressure with RESOURCE_EXHAUSTED before processing them:
    /// creates and publishes are retried (before, they failed at once).
    @Test func createAndPublishAreRetriedUnderBackPressure() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            gateway.knobs.failNextCalls(2, with: .resourceExhausted, methods: ["CreateProcessInstance"])
            let instance = try await client.createProcessInstance(bpmnProcessId: "p")
            #expect(gateway.knobs.callCount("CreateProcessInstance") == 3)
            #expect(gateway.engine.instance(instance.processInstanceKey) != nil)

            gateway.knobs.failNextCalls(2, with: .resourceExhausted, methods: ["CreateProcessInstanceWithResult"])
            await #expect {
                _ = try await client.createProcessInstanceWithResult(
                    bpmnProcessId: "p", requestTimeout: .milliseconds(300))
            } throws: { ($0 as? ZeebeError)?.code == .deadlineExceeded }
            #expect(gateway.knobs.callCount("CreateProcessInstanceWithResult") == 3)

            gateway.knobs.failNextCalls(3, with: .resourceExhausted, methods: ["PublishMessage"])
            try await client.publishMessage(name: "m", correlationKey: "k", timeToLive: .seconds(10))
            #expect(gateway.knobs.callCount("PublishMessage") == 4)
        }
    }

    /// UNAVAILABLE may come after the command was applied: a create is not retried on it.
    @Test func createIsNotRetriedWhenUnavailable() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            gateway.knobs.failNextCalls(1, with: .unavailable, methods: ["CreateProcessInstance"])
            await #expect {
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
            } throws: { ($0 as? ZeebeError)?.code == .unavailable }
            #expect(gateway.knobs.callCount("CreateProcessInstance") == 1)
        }
    }

    /// Back-pressure retries are bounded by the caller's deadline (the call timeout), not only by attempts.
    @Test func backPressureRetriesEndAtTheCallersDeadline() async throws {
        try await withGatewayAndClient(client: { configuration, _ in
            configuration.maxAttempts = 1000
            configuration.defaultCallTimeout = .seconds(1)
        }) { client, gateway in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            gateway.knobs.refuseCalls(for: .seconds(60), with: .resourceExhausted, methods: ["CreateProcessInstance"])
            let start = ContinuousClock.now
            // the last refusal: no retry starts without time to run (ZeebeClient.shortestRetryAttempt)
            await #expect {
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
            } throws: { ($0 as? ZeebeError)?.code == .resourceExhausted }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed < .seconds(5), "\(elapsed)")
            let calls = gateway.knobs.callCount("CreateProcessInstance")
            #expect(calls >= 3 && calls < 1000, "\(calls) calls")
        }
    }

    /// A partition leader change takes seconds: CompleteJob and FailJob keep retrying through it (before,
    /// 5 attempts spent about 0.5 s).
    @Test func jobCommandsAreRetriedThroughALeaderChangeOfSeconds() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            let jobs = try await client.activateJobs(
                type: "t", worker: "w", maxJobsToActivate: 2, timeout: .seconds(60), requestTimeout: .seconds(5))
            try #require(jobs.count == 2)
            gateway.knobs.refuseCalls(for: .seconds(3), with: .unavailable, methods: ["CompleteJob", "FailJob"])
            let start = ContinuousClock.now
            try await client.completeJob(jobs[0].key, jobDeadline: jobs[0].deadline)
            #expect(ContinuousClock.now - start >= .seconds(2.5))
            #expect(gateway.engine.completedJobKeys == [jobs[0].key])
            gateway.knobs.refuseCalls(for: .seconds(2), with: .resourceExhausted, methods: ["FailJob"])
            try await client.failJob(
                jobs[1].key, retries: 2, errorMessage: "later", retryBackOff: .seconds(1), jobDeadline: jobs[1].deadline
            )
            #expect(gateway.engine.failures(ofJob: jobs[1].key).map(\.retries) == [2])
        }
    }

    /// No retry starts after the job's deadline: the job is handed out again anyway.
    @Test func jobCommandRetriesStopAtTheJobDeadline() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            let jobs = try await client.activateJobs(
                type: "t", worker: "w", maxJobsToActivate: 1, timeout: .seconds(2), requestTimeout: .seconds(5))
            let job = try #require(jobs.first)
            gateway.knobs.refuseCalls(for: .seconds(60), with: .unavailable, methods: ["CompleteJob"])
            let start = ContinuousClock.now
            await #expect {
                try await client.completeJob(job.key, jobDeadline: job.deadline)
            } throws: { ($0 as? ZeebeError)?.code == .unavailable }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed < .seconds(8), "\(elapsed)")
            #expect(gateway.knobs.callCount("CompleteJob") > 3)
        }
    }

    /// The jobs of the messages before an error in the middle of a long poll are handed over.
    @Test func activateJobsHandsOverTheJobsReceivedBeforeAnError() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            for _ in 0..<3 { _ = try await client.createProcessInstance(bpmnProcessId: "p") }
            gateway.knobs.failNextActivationMidStream(afterJobs: 2, with: .unavailable)
            let received = Mutex<[ZeebeJob]>([])
            await #expect {
                try await client.activateJobs(
                    type: "t", worker: "w", maxJobsToActivate: 3, timeout: .seconds(60), requestTimeout: .seconds(1)
                ) { jobs in received.withLock { $0.append(contentsOf: jobs) } }
            } throws: { ($0 as? ZeebeError)?.code == .unavailable }
            let jobs = received.withLock { $0 }
            #expect(jobs.count == 2)
            for job in jobs { try await client.completeJob(job.key) }
            #expect(gateway.engine.completedJobKeys.count == 2)
        }
    }

    /// A worker whose long poll fails half-way works on the jobs it already got instead of leaving them
    /// locked until their timeout (5 min here).
    @Test func workerHandlesTheJobsOfAPollThatFailsHalfWay() async throws {
        try await withGatewayAndClientService { client, gateway in
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.requestTimeout = .milliseconds(300)
            configuration.jobTimeout = .seconds(300)
            let worker = JobWorker(client: client, configuration: configuration) { _ in .complete }
            try await withZeebeClient(configuration: client.configuration) { setup in
                _ = try await setup.deployResource(name: "p.bpmn", content: Self.process)
                for _ in 0..<2 { _ = try await setup.createProcessInstance(bpmnProcessId: "p") }
            }
            gateway.knobs.failNextActivationMidStream(afterJobs: 2, with: .internalError)
            try await withServices([client, worker]) {
                let completed = try await eventually(timeout: .seconds(20)) {
                    gateway.engine.completedJobKeys.count == 2
                }
                #expect(completed, "the jobs of the failed poll were left to their 5 min timeout")
            }
            #expect(gateway.engine.failedJobKeys.isEmpty)
        }
    }

    /// Responses up to 5 MB are accepted (the official clients' default), not only gRPC's 4 MiB.
    @Test func activationsOfMoreThanFourMebibytesAreAccepted() async throws {
        try await withGatewayAndClient { client, _ in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            let payload = String(repeating: "x", count: 900_000)
            for _ in 0..<5 {
                _ = try await client.createProcessInstance(
                    bpmnProcessId: "p", variables: try ZeebeVariables(["payload": payload]))
            }
            let jobs = try await client.activateJobs(
                type: "t", worker: "w", maxJobsToActivate: 5, timeout: .seconds(60), requestTimeout: .seconds(5))
            #expect(jobs.count == 5)
            #expect(client.configuration.maxInboundMessageSize == 5 * 1024 * 1024)
        }
    }
}
