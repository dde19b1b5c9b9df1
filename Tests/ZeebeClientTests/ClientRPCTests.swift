import Foundation
import GRPCCore
import Testing
import ZeebeClient
import ZeebeTestGateway

@Suite struct ClientRPCTests {
    @Test func topologyOverLoopbackHTTP2() async throws {
        try await withGatewayAndClient { client, _ in
            let topology = try await client.topology()
            #expect(topology.brokers.count == 1)
            #expect(topology.partitionsCount == 1)
            #expect(topology.gatewayVersion == "8.8.0-test")
        }
    }

    @Test func deployCreateActivateCompleteWithResult() async throws {
        try await withGatewayAndClient { client, gateway in
            let deployment = try await client.deployResource(
                name: "order.bpmn",
                content: bpmnDocument(processId: "order", steps: [.task("reserve")])
            )
            #expect(deployment.processes.map(\.bpmnProcessId) == ["order"])
            #expect(deployment.processes.first?.version == 1)
            let again = try await client.deployResource(
                name: "order.bpmn",
                content: bpmnDocument(processId: "order", steps: [.task("reserve")])
            )
            #expect(again.processes.first?.processDefinitionKey == deployment.processes.first?.processDefinitionKey)

            async let result = client.createProcessInstanceWithResult(
                bpmnProcessId: "order",
                variables: try ZeebeVariables(["orderId": "o-1"]),
                requestTimeout: .seconds(10),
                fetchVariables: ["orderId", "reserved"]
            )
            var jobs: [ZeebeJob] = []
            for _ in 0..<100 where jobs.isEmpty {
                jobs = try await client.activateJobs(
                    type: "reserve",
                    worker: "test",
                    maxJobsToActivate: 5,
                    timeout: .seconds(30),
                    requestTimeout: .seconds(1)
                )
            }
            let job = try #require(jobs.first)
            #expect(job.customHeaders == ["step": "0"])
            #expect(job.retries == 3)
            #expect(try job.variables(as: [String: String].self) == ["orderId": "o-1"])
            try await client.completeJob(job.key, variables: try ZeebeVariables(json: #"{"reserved":true,"extra":1}"#))
            let finished = try await result
            #expect(finished.variables.json == #"{"orderId":"o-1","reserved":true}"#)
            #expect(gateway.engine.completedJobKeys == [job.key])
        }
    }

    @Test func longPollingWaitsForAJobAndEmptyPollsReturn() async throws {
        try await withGatewayAndClient { client, _ in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
            let start = ContinuousClock.now
            let none = try await client.activateJobs(
                type: "t",
                worker: "w",
                maxJobsToActivate: 1,
                timeout: .seconds(5),
                requestTimeout: .milliseconds(300)
            )
            #expect(none.isEmpty)
            #expect(ContinuousClock.now - start >= .milliseconds(280))
            async let polled = client.activateJobs(
                type: "t",
                worker: "w",
                maxJobsToActivate: 1,
                timeout: .seconds(5),
                requestTimeout: .seconds(5)
            )
            try await Task.sleep(for: .milliseconds(200))
            let instance = try await client.createProcessInstance(bpmnProcessId: "p")
            let jobs = try await polled
            #expect(jobs.map(\.processInstanceKey) == [instance.processInstanceKey])
        }
    }

    @Test func lateCompleteAfterJobTimeoutIsNotFound() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            let first = try await client.activateJobs(
                type: "t", worker: "slow", maxJobsToActivate: 1, timeout: .milliseconds(100),
                requestTimeout: .seconds(2))
            let job = try #require(first.first)
            try await Task.sleep(for: .milliseconds(250))
            // The lock expired without using a retry; another worker gets the job again.
            let second = try await client.activateJobs(
                type: "t", worker: "fast", maxJobsToActivate: 1, timeout: .seconds(30), requestTimeout: .seconds(2))
            #expect(second.first?.key == job.key)
            #expect(second.first?.retries == 3)
            try await client.completeJob(job.key)
            await #expect {
                try await client.completeJob(job.key)
            } throws: { error in
                let error = error as? ZeebeError
                return error?.code == .notFound && error?.rpcCode == .notFound
                    && error?.message.contains("rejected with code 'NOT_FOUND'") == true
            }
            #expect(gateway.engine.completedJobKeys == [job.key])
        }
    }

    @Test func failJobRetriesWithBackOffThenRaisesIncident() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t", retries: 2)]))
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            let job = try #require(
                try await client.activateJobs(
                    type: "t", worker: "w", maxJobsToActivate: 1, timeout: .seconds(30), requestTimeout: .seconds(2)
                ).first)
            try await client.failJob(job.key, retries: 1, errorMessage: "boom", retryBackOff: .milliseconds(400))
            let during = try await client.activateJobs(
                type: "t", worker: "w", maxJobsToActivate: 1, timeout: .seconds(30), requestTimeout: .milliseconds(-1))
            #expect(during.isEmpty)
            let after = try await client.activateJobs(
                type: "t", worker: "w", maxJobsToActivate: 1, timeout: .seconds(30), requestTimeout: .seconds(3))
            #expect(after.first?.key == job.key)
            #expect(after.first?.retries == 1)
            try await client.failJob(job.key, retries: 0, errorMessage: "no luck")
            #expect(gateway.engine.incidents.map(\.message) == ["no luck"])
            await #expect {
                try await client.failJob(job.key, retries: 0, errorMessage: "again")
            } throws: { ($0 as? ZeebeError)?.code == .failedPrecondition }
            try await client.updateJobRetries(job.key, retries: 3)
            #expect(gateway.engine.job(job.key)?.retries == 3)
            await #expect {
                try await client.updateJobRetries(424242, retries: 3)
            } throws: { ($0 as? ZeebeError)?.code == .notFound }
        }
    }

    @Test func throwErrorWithoutCatcherRaisesIncident() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            let job = try #require(
                try await client.activateJobs(
                    type: "t", worker: "w", maxJobsToActivate: 1, timeout: .seconds(30), requestTimeout: .seconds(2)
                ).first)
            try await client.throwError(job.key, errorCode: "OUT_OF_STOCK", errorMessage: "none left")
            #expect(gateway.engine.incidents.first?.message.contains("OUT_OF_STOCK") == true)
        }
    }

    @Test func setVariablesAndCancel() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
            let instance = try await client.createProcessInstance(
                bpmnProcessId: "p", variables: try ZeebeVariables(json: #"{"a":1}"#))
            let key = try await client.setVariables(
                elementInstanceKey: instance.processInstanceKey, variables: try ZeebeVariables(json: #"{"b":"x"}"#))
            #expect(key > 0)
            #expect(
                gateway.engine.instance(instance.processInstanceKey)?.variables == ["a": .number(1), "b": .string("x")])
            let fetched = try await client.activateJobs(
                type: "t",
                worker: "w",
                maxJobsToActivate: 1,
                timeout: .seconds(30),
                requestTimeout: .seconds(2),
                fetchVariables: ["b"]
            )
            #expect(fetched.first?.variables.json == #"{"b":"x"}"#)
            try await client.cancelProcessInstance(instance.processInstanceKey)
            #expect(gateway.engine.instance(instance.processInstanceKey)?.state == .canceled)
            await #expect {
                try await client.cancelProcessInstance(instance.processInstanceKey)
            } throws: { ($0 as? ZeebeError)?.code == .notFound }
        }
    }

    @Test func gatewayRejectionsKeepCodeAndMessage() async throws {
        try await withGatewayAndClient { client, _ in
            await #expect {
                _ = try await client.createProcessInstance(bpmnProcessId: "missing")
            } throws: { error in
                let error = error as? ZeebeError
                return error?.code == .notFound && error?.message.contains("missing") == true
            }
            await #expect {
                _ = try await client.deployResource(name: "bad.bpmn", content: Array("<nope".utf8))
            } throws: { ($0 as? ZeebeError)?.code == .invalidArgument }
            await #expect {
                _ = try await client.activateJobs(type: "", worker: "w", maxJobsToActivate: 1, timeout: .seconds(1))
            } throws: { ($0 as? ZeebeError)?.code == .invalidArgument }
        }
    }

    @Test func messagesAreBufferedForTheirTTLAndDeduplicatedById() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "m.bpmn",
                content: bpmnDocument(processId: "m", steps: [.message("paid", correlationKey: "=orderId")]))
            // Published before the instance waits: buffered, then correlated on arrival.
            try await client.publishMessage(
                name: "paid", correlationKey: "o-1", variables: try ZeebeVariables(["amount": 5]),
                timeToLive: .seconds(30), messageId: "pay-1")
            await #expect {
                try await client.publishMessage(
                    name: "paid", correlationKey: "o-1", timeToLive: .seconds(30), messageId: "pay-1")
            } throws: { ($0 as? ZeebeError)?.code == .alreadyExists }
            let result = try await client.createProcessInstanceWithResult(
                bpmnProcessId: "m", variables: try ZeebeVariables(["orderId": "o-1"]), requestTimeout: .seconds(5))
            #expect(result.variables.json == #"{"amount":5,"orderId":"o-1"}"#)

            // TTL zero: only an open subscription gets it; nothing is buffered.
            try await client.publishMessage(name: "paid", correlationKey: "o-2", timeToLive: .zero)
            let waiting = try await client.createProcessInstance(
                bpmnProcessId: "m", variables: try ZeebeVariables(["orderId": "o-2"]))
            #expect(gateway.engine.instance(waiting.processInstanceKey)?.state == .active)
            // A short TTL expires.
            try await client.publishMessage(name: "paid", correlationKey: "o-3", timeToLive: .milliseconds(100))
            try await Task.sleep(for: .milliseconds(200))
            let late = try await client.createProcessInstance(
                bpmnProcessId: "m", variables: try ZeebeVariables(["orderId": "o-3"]))
            #expect(gateway.engine.instance(late.processInstanceKey)?.state == .active)
            // After the buffered message expired, the same id may be used again.
            try await client.publishMessage(name: "paid", correlationKey: "o-3", timeToLive: .zero, messageId: "x")
            try await client.publishMessage(name: "paid", correlationKey: "o-2", timeToLive: .seconds(1))
            #expect(gateway.engine.instance(waiting.processInstanceKey)?.state == .completed)
        }
    }

    @Test func streamActivatedJobsPushesNewJobs() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
            let received = try await withThrowingTaskGroup(of: ZeebeJob?.self) { group in
                let (jobs, sink) = AsyncStream.makeStream(of: ZeebeJob.self)
                group.addTask {
                    try await client.streamActivatedJobs(type: "t", worker: "streamer", timeout: .seconds(30)) { job in
                        sink.yield(job)
                    }
                    return nil
                }
                #expect(try await eventually { gateway.engine.openStreamCount == 1 })
                let instance = try await client.createProcessInstance(bpmnProcessId: "p")
                var iterator = jobs.makeAsyncIterator()
                let job = await iterator.next()
                #expect(job?.processInstanceKey == instance.processInstanceKey)
                #expect(job?.worker == "streamer")
                group.cancelAll()
                return job
            }
            let job = try #require(received)
            try await client.completeJob(job.key)
            #expect(gateway.engine.completedJobKeys == [job.key])
        }
    }
}
