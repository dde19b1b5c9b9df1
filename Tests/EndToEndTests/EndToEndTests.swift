import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import ZeebeClient
import ZeebeTestGateway

/// The whole product, each part its own process on loopback: the test gateway, affinity-server,
/// two affinity-workers and two affinity-demos.
@Suite("end to end", .serialized)
struct EndToEndTests {
    /// Hundreds of concurrent requests through both front-ends each come back with their own outcome.
    @Test func concurrentRequestsThroughBothFrontEndsGetTheirOwnOutcome() async throws {
        try await withAffinityStack { stack in
            let count = 240
            let answers = try await withThrowingTaskGroup(of: (String, HTTPAnswer).self) { group in
                for index in 0..<count {
                    let demo = stack.demos[index % 2]
                    let requestID = "req-\(index)-\(UUID().uuidString)"
                    group.addTask {
                        let answer = try await stack.post(
                            demo, "/process/order-process", json: ["requestId": requestID, "index": index])
                        return (requestID, answer)
                    }
                }
                var answers: [(String, HTTPAnswer)] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            #expect(answers.count == count)
            var keys = Set<String>()
            for (requestID, answer) in answers {
                #expect(answer.status == .ok, "\(String(decoding: answer.body, as: UTF8.self))")
                guard answer.status == .ok else { continue }
                let variables = try answer.object()
                #expect(variables["requestId"] as? String == requestID)
                #expect(variables["prepared"] as? Bool == true)
                if let key = answer.headers.first(name: "x-process-instance-key") { keys.insert(key) }
            }
            #expect(keys.count == count)
            // The worker completes each publish-outcome job once its outcome was acknowledged, so every
            // instance runs to its end.
            let engine = stack.gateway.engine
            let allCompleted = await eventually(timeout: .seconds(30)) {
                keys.allSatisfy { Int64($0).flatMap { engine.instance($0) }?.state == .completed }
            }
            #expect(allCompleted)
            // The workers export the jobs they completed as Prometheus metrics (a job counts once its
            // CompleteJob call returned, which can be just after the engine moved on: poll).
            let exported = await eventually(timeout: .seconds(20)) {
                var completedByWorkers = 0
                for worker in stack.workers {
                    guard let metrics = try? await stack.get(worker, "/metrics"), metrics.status == .ok else {
                        return false
                    }
                    let text = String(decoding: metrics.body, as: UTF8.self)
                    let line = text.split(separator: "\n").first {
                        $0.hasPrefix("zeebe_worker_jobs_completed_total") && $0.contains("publish-outcome")
                    }
                    completedByWorkers += line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? 0
                }
                return completedByWorkers >= count
            }
            #expect(exported)
            // SIGTERM: each worker finishes its jobs in flight and exits 0.
            for worker in stack.workers {
                worker.signal(SIGTERM)
                #expect(await worker.waitForExit(timeout: .seconds(20)) == 0, "\(worker.log)")
            }
        }
    }

    /// The chat flow: the greeting, then one outcome per message, each carrying that message's variables.
    @Test func chatReturnsOneOutcomePerMessage() async throws {
        try await withAffinityStack { stack in
            let chatID = "chat-\(UUID().uuidString)"
            let greeting = try await stack.post(stack.demos[0], "/process/chat-process", json: ["chatId": chatID])
            #expect(greeting.status == .ok, "\(String(decoding: greeting.body, as: UTF8.self))")
            let key = try #require(greeting.headers.first(name: "x-process-instance-key"))
            #expect(try greeting.object()["chatId"] as? String == chatID)
            for number in 1...4 {
                let text = "message \(number) \(UUID().uuidString)"
                let answer = try await stack.post(
                    stack.demos[number % 2], "/message/chat-message",
                    json: [
                        "correlationKey": chatID, "processInstanceKey": key,
                        "variables": ["text": text, "messageNumber": number],
                    ])
                #expect(answer.status == .ok, "\(String(decoding: answer.body, as: UTF8.self))")
                let variables = try answer.object()
                #expect(variables["text"] as? String == text)
                #expect(variables["messageNumber"] as? Int == number)
            }
        }
    }

    /// A request whose process never produces an outcome answers 504 with its process instance key.
    @Test func missingOutcomeAnswers504WithTheKey() async throws {
        try await withAffinityStack(demoTimeout: "3s") { stack in
            // The chat process waits for a message after its greeting: its second outcome never comes.
            let chatID = "silent-\(UUID().uuidString)"
            let greeting = try await stack.post(stack.demos[1], "/process/chat-process", json: ["chatId": chatID])
            #expect(greeting.status == .ok)
            let key = try #require(greeting.headers.first(name: "x-process-instance-key"))
            let answer = try await stack.post(
                stack.demos[1], "/message/not-a-message-of-this-process",
                json: ["correlationKey": chatID, "processInstanceKey": key])
            #expect(answer.status == .gatewayTimeout)
            #expect(try answer.object()["processInstanceKey"] as? String == key)
            // Bad input gets a clear status and the front-end keeps serving.
            let notAnObject = try await stack.send(
                stack.demos[1], "/process/order-process", method: .POST, body: Data("[1,2]".utf8))
            #expect(notAnObject.status == .badRequest)
            let malformed = try await stack.send(
                stack.demos[1], "/message/chat-message", method: .POST, body: Data("{\"correlationKey\":".utf8))
            #expect(malformed.status == .badRequest)
            #expect(try malformed.object()["error"] as? String == "bad_request")
            let unknown = try await stack.post(stack.demos[1], "/process/no-such-process", json: [:])
            #expect(unknown.status == .notFound, "\(String(decoding: unknown.body, as: UTF8.self))")
            let ready = try await stack.get(stack.demos[1], "/health/ready")
            #expect(ready.status == .ok)
        }
    }

    /// With no replica reachable, the worker fails every job (visible in the gateway's engine) and
    /// completes none.
    @Test func workerWithoutAnyReplicaFailsJobsAndCompletesNone() async throws {
        try await withTestGateway { gateway in
            let deadPorts = [try closedLoopbackPort(), try closedLoopbackPort()]
            let urls = deadPorts.flatMap { ["--affinity-url", "ws://127.0.0.1:\($0)/v1/ws"] }
            try await withChildProcess(
                "affinity-worker", urls + ["--host", "127.0.0.1", "--port", "0", "--failure-backoff", "200ms"],
                environment: zeebeEnvironment(gateway)
            ) { worker in
                var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
                configuration.transportSecurity = .plaintext
                let keys = try await withZeebeClient(configuration: configuration) { zeebe in
                    _ = try await zeebe.deployResources(Self.publishOnlyProcess)
                    var keys: [Int64] = []
                    for index in 0..<5 {
                        let instance = try await zeebe.createProcessInstance(
                            bpmnProcessId: "publish-only", variables: try ZeebeVariables(["index": index]))
                        keys.append(instance.processInstanceKey)
                    }
                    return keys
                }
                let engine = gateway.engine
                func jobs(_ keys: [Int64]) -> [EngineJob] { keys.compactMap { engine.job($0) } }
                // Each instance's job is failed until its 3 retries are used up (an incident).
                let allFailedThrice = await eventually(timeout: .seconds(30)) {
                    let failed = jobs(engine.failedJobKeys).filter { keys.contains($0.processInstanceKey) }
                    return Set(failed.map(\.processInstanceKey)) == Set(keys) && engine.failedJobKeys.count >= 15
                }
                #expect(allFailedThrice, "worker log:\n\(worker.log)")
                let completed = jobs(engine.completedJobKeys).filter { keys.contains($0.processInstanceKey) }
                #expect(completed.isEmpty)
                for key in keys {
                    #expect(engine.instance(key)?.state != .completed)
                }
                let ready = try await withReadinessClient {
                    try await $0.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(worker.port)/health/ready"), timeout: .seconds(5)
                    ).status
                }
                #expect(ready == .serviceUnavailable)
            }
        }
    }

    static let publishOnlyProcess = [
        DeploymentResource(
            name: "publish-only.bpmn",
            content: Array(
                """
                <?xml version="1.0" encoding="UTF-8"?>
                <bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://bpmn.io/schema/bpmn">
                  <bpmn:process id="publish-only" isExecutable="true">
                    <bpmn:startEvent id="start" />
                    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="publish" />
                    <bpmn:serviceTask id="publish">
                      <bpmn:extensionElements><zeebe:taskDefinition type="publish-outcome" retries="3" /></bpmn:extensionElements>
                    </bpmn:serviceTask>
                    <bpmn:sequenceFlow id="f2" sourceRef="publish" targetRef="end" />
                    <bpmn:endEvent id="end" />
                  </bpmn:process>
                </bpmn:definitions>
                """.utf8))
    ]
}

/// An HTTP client for one check, shut down afterwards.
func withReadinessClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}
