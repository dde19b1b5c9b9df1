import Foundation
import GRPCCore
import Synchronization
import Testing
import ZeebeClient
import ZeebeTestGateway

/// Job push next to polling, and the activation condition, against the test gateway pushing jobs.
@Suite struct JobStreamTests {
    static let process = bpmnDocument(processId: "p", steps: [.task("t")])

    /// Jobs the stream pushes while every streamed slot is busy must not stop the poll: a job that is
    /// activatable again after a lock ran out is served only by polling. (Before, streamed jobs counted
    /// toward the poll threshold, so two held streamed jobs with `maxJobsActive` 2 stopped polling.)
    @Test func streamedJobsDoNotStarveThePollOfTheBacklog() async throws {
        try await withGatewayAndClientService { client, gateway in
            let backlog = try await withZeebeClient(configuration: client.configuration) { setup in
                _ = try await setup.deployResource(name: "p.bpmn", content: Self.process)
                let instance = try await setup.createProcessInstance(
                    bpmnProcessId: "p", variables: try ZeebeVariables(["hold": false]))
                // another worker takes it for 4 s and crashes: afterwards only a poll can get it
                let taken = try await setup.activateJobs(
                    type: "t", worker: "crashed", maxJobsToActivate: 1, timeout: .seconds(4))
                #expect(taken.count == 1)
                return instance
            }
            let release = Mutex(false)
            let held = Mutex(0)
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.maxJobsActive = 2
            configuration.streamEnabled = true
            configuration.requestTimeout = .milliseconds(300)
            let worker = JobWorker(client: client, configuration: configuration) { job in
                struct Hold: Decodable { var hold: Bool }
                if try job.variables(as: Hold.self).hold {
                    held.withLock { $0 += 1 }
                    let start = ContinuousClock.now
                    while !release.withLock({ $0 }), ContinuousClock.now - start < .seconds(60) {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                return .complete
            }
            try await withServices([client, worker]) {
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.openStreamCount == 1 })
                var pushed: [Int64] = []
                for _ in 0..<2 {
                    pushed.append(
                        try await client.createProcessInstance(
                            bpmnProcessId: "p", variables: try ZeebeVariables(["hold": true])
                        ).processInstanceKey)
                }
                #expect(try await eventually(timeout: .seconds(20)) { held.withLock { $0 } == 2 })
                #expect(gateway.engine.streamedJobKeys.count == 2)
                // both streamed slots are busy; the backlog job's lock runs out and the poll takes it
                let polled = try await eventually(timeout: .seconds(30)) {
                    gateway.engine.instance(backlog.processInstanceKey)?.state == .completed
                }
                #expect(polled, "the held streamed jobs starved the poll")
                #expect(held.withLock { $0 } == 2)
                #expect(pushed.allSatisfy { gateway.engine.instance($0)?.state == .active })
                release.withLock { $0 = true }
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.completedJobKeys.count == 3 })
            }
        }
    }

    /// A job stream that fails is reopened with back-off; one the gateway closes cleanly at once; and the
    /// reopened stream gets pushed jobs.
    @Test func failedJobStreamIsReopenedWithBackoff() async throws {
        try await withGatewayAndClientService { client, gateway in
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.streamEnabled = true
            configuration.requestTimeout = .milliseconds(300)
            let worker = JobWorker(client: client, configuration: configuration) { _ in .complete }
            gateway.knobs.failNextCalls(3, with: .unavailable, methods: ["StreamActivatedJobs"])
            let start = ContinuousClock.now
            try await withServices([client, worker]) {
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.openStreamCount == 1 })
                // three failures backed off about 160, 256 and 410 ms (from the 100 ms poll interval)
                #expect(ContinuousClock.now - start >= .milliseconds(700))
                #expect(gateway.knobs.callCount("StreamActivatedJobs") == 4)
                gateway.engine.closeAllStreams()
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.openStreamCount == 1 })
                #expect(gateway.knobs.callCount("StreamActivatedJobs") == 5)
                _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.completedJobKeys.count == 1 })
                #expect(gateway.engine.streamedJobKeys.count == 1)
            }
        }
    }

    /// While the activation condition is false the worker neither polls nor keeps a job stream open.
    @Test func workerActivatesNothingWhileItsActivationConditionIsFalse() async throws {
        try await withGatewayAndClientService { client, gateway in
            let allowed = Atomic<Bool>(false)
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.streamEnabled = true
            configuration.requestTimeout = .milliseconds(300)
            let worker = JobWorker(
                client: client, configuration: configuration,
                activationCondition: { allowed.load(ordering: .relaxed) }
            ) { _ in .complete }
            try await withServices([client, worker]) {
                _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
                try await Task.sleep(for: .seconds(1))
                #expect(gateway.knobs.callCount("ActivateJobs") == 0)
                #expect(gateway.knobs.callCount("StreamActivatedJobs") == 0)
                #expect(gateway.engine.completedJobKeys.isEmpty)
                allowed.store(true, ordering: .relaxed)
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.completedJobKeys.count == 1 })
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.openStreamCount == 1 })
                allowed.store(false, ordering: .relaxed)
                #expect(try await eventually(timeout: .seconds(20)) { gateway.engine.openStreamCount == 0 })
                let polls = gateway.knobs.callCount("ActivateJobs")
                try await Task.sleep(for: .seconds(1))
                // at most the long poll running when the condition turned false
                #expect(gateway.knobs.callCount("ActivateJobs") <= polls + 1)
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
                try await Task.sleep(for: .milliseconds(500))
                #expect(gateway.engine.completedJobKeys.count == 1)
            }
        }
    }

    /// An activation condition that flips while jobs are activated strands no job: every job a poll or
    /// the stream activated is worked on or handed back, none waits for its lock to run out. (Before, a
    /// long poll was cancelled when the condition turned false; a response the gateway had already written
    /// was dropped with it, and its jobs stayed locked to this worker until their timeout.)
    @Test(arguments: [false, true])
    func aFlippingActivationConditionLeavesNoJobToItsTimeout(streamEnabled: Bool) async throws {
        try await withGatewayAndClientService { client, gateway in
            let allowed = ActivationSwitch()
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.streamEnabled = streamEnabled
            configuration.maxJobsActive = 8
            configuration.pollInterval = .milliseconds(10)
            configuration.requestTimeout = .seconds(5)
            configuration.jobTimeout = .seconds(120)
            let worker = JobWorker(
                client: client, configuration: configuration,
                activationCondition: { allowed.isOn }
            ) { _ in
                try await Task.sleep(for: .milliseconds(2))
                return .complete
            }
            try await withServices([client, worker]) {
                _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
                let count = 400
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for index in 0..<count {
                            _ = try await client.createProcessInstance(bpmnProcessId: "p")
                            if index % 4 == 0 { try await Task.sleep(for: .milliseconds(3)) }
                        }
                    }
                    group.addTask {
                        var flips = 0
                        while gateway.engine.completedJobKeys.count < count, flips < 400 {
                            allowed.set(flips % 2 == 1)
                            flips += 1
                            try await Task.sleep(for: .milliseconds(Int.random(in: 20...80)))
                        }
                        allowed.set(true)
                    }
                    try await group.waitForAll()
                }
                let done = try await eventually(timeout: .seconds(20)) {
                    gateway.engine.completedJobKeys.count == count
                }
                let stranded = gateway.engine.inspection().jobs.filter { $0.state == .activated }
                #expect(
                    done,
                    "\(gateway.engine.completedJobKeys.count) of \(count) jobs completed; locked: \(stranded.prefix(5))"
                )
            }
        }
    }

    /// The default tenant goes where the official clients send it; an explicit tenant replaces it.
    @Test func defaultTenantIsSentOnCreatePublishDeployAndActivation() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(name: "p.bpmn", content: Self.process)
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            _ = try await client.createProcessInstance(bpmnProcessId: "p", tenantId: "tenant-a")
            try await client.publishMessage(name: "m", correlationKey: "k")
            _ = try await client.activateJobs(
                type: "t", worker: "w", maxJobsToActivate: 1, timeout: .seconds(10), requestTimeout: .seconds(-1))
            _ = try await client.activateJobs(
                type: "t", worker: "w", maxJobsToActivate: 1, timeout: .seconds(10), requestTimeout: .seconds(-1),
                tenantIds: ["tenant-a", "tenant-b"])
            #expect(gateway.knobs.tenantIds(of: "DeployResource") == [["<default>"]])
            #expect(gateway.knobs.tenantIds(of: "CreateProcessInstance") == [["<default>"], ["tenant-a"]])
            #expect(gateway.knobs.tenantIds(of: "PublishMessage") == [["<default>"]])
            #expect(gateway.knobs.tenantIds(of: "ActivateJobs") == [["<default>"], ["tenant-a", "tenant-b"]])
        }
    }
}

/// An activation condition a test flips from another task.
private final class ActivationSwitch: Sendable {
    private let state = Atomic<Bool>(true)
    var isOn: Bool { state.load(ordering: .relaxed) }
    func set(_ on: Bool) { state.store(on, ordering: .relaxed) }
}
