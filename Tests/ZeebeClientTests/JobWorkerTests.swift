import Foundation
import GRPCCore
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import ZeebeClient
import ZeebeTestGateway

/// Runs `services` in a service group during `body`, then shuts the group down gracefully.
func withServices<Result: Sendable>(
    _ services: [any Service],
    _ body: () async throws -> Result
) async throws -> Result {
    let group = ServiceGroup(services: services, gracefulShutdownSignals: [], logger: Logger(label: "test"))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

/// Starts a gateway and a client service; the client runs inside the service group with the workers.
func withGatewayAndClientService<Result: Sendable>(
    _ body: (ZeebeClient, TestGateway) async throws -> Result
) async throws -> Result {
    try await withTestGateway { gateway in
        let client = try ZeebeClient(configuration: ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port))
        return try await body(client, gateway)
    }
}

@Suite struct JobWorkerTests {
    struct Order: Codable {
        var orderId: String
        var reserved: Bool?
        var paid: Bool?
    }

    /// The "done when" of the issue: a client and two workers written against the public API run
    /// a two-task process with a message catch event end to end.
    @Test func twoTaskProcessWithMessageCatchEndToEnd() async throws {
        try await withGatewayAndClientService { client, gateway in
            var reserveConfiguration = JobWorkerConfiguration(jobType: "reserve", workerName: "stock")
            reserveConfiguration.requestTimeout = .seconds(2)
            let reserve = JobWorker(client: client, configuration: reserveConfiguration) { job in
                let order = try job.variables(as: Order.self)
                return .complete(
                    try ZeebeVariables(
                        ["reserved": true, "reservedFor": .init(order.orderId)] as [String: AnyCodableValue]))
            }
            var shipConfiguration = JobWorkerConfiguration(jobType: "ship", workerName: "shipping")
            shipConfiguration.streamEnabled = true
            shipConfiguration.requestTimeout = .seconds(2)
            let ship = JobWorker(client: client, configuration: shipConfiguration) { job in
                let order = try job.variables(as: Order.self)
                guard order.reserved == true, order.paid == true else {
                    return .fail(message: "order \(order.orderId) not ready")
                }
                return .complete(try ZeebeVariables(["shipped": true]))
            }
            try await withServices([client, reserve, ship]) {
                _ = try await client.deployResource(
                    name: "order.bpmn",
                    content: bpmnDocument(
                        processId: "order",
                        steps: [
                            .task("reserve"), .message("payment-received", correlationKey: "=orderId"), .task("ship"),
                        ]
                    )
                )
                async let outcome = client.createProcessInstanceWithResult(
                    bpmnProcessId: "order",
                    variables: try ZeebeVariables(Order(orderId: "o-42")),
                    requestTimeout: .seconds(20)
                )
                #expect(try await eventually { gateway.engine.completedJobKeys.count == 1 })
                try await client.publishMessage(
                    name: "payment-received",
                    correlationKey: "o-42",
                    variables: try ZeebeVariables(["paid": true]),
                    timeToLive: .seconds(60),
                    messageId: "payment-o-42"
                )
                let result = try await outcome
                struct Final: Decodable, Equatable {
                    var orderId: String
                    var reserved: Bool
                    var reservedFor: String
                    var paid: Bool
                    var shipped: Bool
                }
                #expect(
                    try result.variables.decode(Final.self)
                        == Final(orderId: "o-42", reserved: true, reservedFor: "o-42", paid: true, shipped: true)
                )
                #expect(gateway.engine.completedJobKeys.count == 2)
                // The streaming worker got the "ship" job pushed.
                #expect(gateway.engine.streamedJobKeys.count == 1)
                #expect(gateway.engine.failedJobKeys.isEmpty)
                #expect(gateway.engine.incidents.isEmpty)
            }
        }
    }

    @Test func streamingWorkerGetsNewJobsPushedAndTheBacklogByPolling() async throws {
        try await withGatewayAndClientService { client, gateway in
            // Created before any stream exists (by a second client): only polling can get it.
            let backlog = try await withZeebeClient(configuration: client.configuration) { setup in
                _ = try await setup.deployResource(
                    name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
                return try await setup.createProcessInstance(bpmnProcessId: "p")
            }
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.streamEnabled = true
            configuration.requestTimeout = .milliseconds(200)
            let worker = JobWorker(client: client, configuration: configuration) { _ in .complete }
            try await withServices([client, worker]) {
                #expect(try await eventually { gateway.engine.completedJobKeys.count == 1 })
                #expect(try await eventually { gateway.engine.openStreamCount == 1 })
                let pushed = try await client.createProcessInstance(bpmnProcessId: "p")
                #expect(try await eventually { gateway.engine.completedJobKeys.count == 2 })
                #expect(gateway.engine.streamedJobKeys.count == 1)
                #expect(gateway.engine.instance(backlog.processInstanceKey)?.state == .completed)
                #expect(gateway.engine.instance(pushed.processInstanceKey)?.state == .completed)
            }
            // Shutdown closed the stream (the gateway sees the cancellation shortly after).
            #expect(try await eventually { gateway.engine.openStreamCount == 0 })
        }
    }

    @Test func handlerThatThrowsFailsTheJobWithRetriesMinusOne() async throws {
        struct HandlerFailure: Error, CustomStringConvertible {
            var description: String { "card declined" }
        }
        try await withGatewayAndClientService { client, gateway in
            var configuration = JobWorkerConfiguration(jobType: "charge")
            configuration.requestTimeout = .seconds(1)
            let worker = JobWorker(client: client, configuration: configuration) { _ in throw HandlerFailure() }
            try await withServices([client, worker]) {
                _ = try await client.deployResource(
                    name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("charge", retries: 2)]))
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
                // Two attempts: 2 -> 1 -> 0 retries, then an incident with the handler's error.
                #expect(try await eventually { gateway.engine.incidents.count == 1 })
                #expect(gateway.engine.failedJobKeys.count == 2)
                #expect(gateway.engine.incidents.first?.message == "card declined")
            }
        }
    }

    @Test func workerBacksOffWhenPollingIsRejected() async throws {
        try await withGatewayAndClientService { client, gateway in
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.requestTimeout = .milliseconds(200)
            configuration.pollInterval = .milliseconds(20)
            let worker = JobWorker(client: client, configuration: configuration) { _ in .complete }
            // Rejected before the worker's first poll.
            gateway.knobs.failNextCalls(4, with: .resourceExhausted, methods: ["ActivateJobs"])
            let start = ContinuousClock.now
            try await withServices([client, worker]) {
                _ = try await client.deployResource(
                    name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
                #expect(try await eventually { gateway.engine.completedJobKeys.count == 1 })
            }
            // 4 rejected polls back off 32, 51, 82 and 131 ms (±10 %) before the job is taken.
            #expect(ContinuousClock.now - start >= .milliseconds(250))
            #expect(gateway.knobs.callCount("ActivateJobs") >= 5)
        }
    }

    @Test func gracefulShutdownWaitsForInFlightJobs() async throws {
        try await withGatewayAndClientService { client, gateway in
            let started = Mutex(false)
            var configuration = JobWorkerConfiguration(jobType: "slow")
            configuration.requestTimeout = .seconds(1)
            let worker = JobWorker(client: client, configuration: configuration) { _ in
                started.withLock { $0 = true }
                try await Task.sleep(for: .milliseconds(500))
                return .complete
            }
            try await withServices([client, worker]) {
                _ = try await client.deployResource(
                    name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("slow")]))
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
                #expect(try await eventually { started.withLock { $0 } })
                #expect(gateway.engine.completedJobKeys.isEmpty)
            }
            // The group shut down after the in-flight job was completed.
            #expect(gateway.engine.completedJobKeys.count == 1)
            #expect(worker.jobsInFlight == 0)
        }
    }

    @Test func cancellingTheWorkerLeavesJobsToTheirTimeout() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("stuck")]))
            _ = try await client.createProcessInstance(bpmnProcessId: "p")
            let started = Mutex(false)
            var configuration = JobWorkerConfiguration(jobType: "stuck")
            configuration.requestTimeout = .milliseconds(300)
            let worker = JobWorker(client: client, configuration: configuration) { _ in
                started.withLock { $0 = true }
                try await Task.sleep(for: .seconds(60))
                return .complete
            }
            try await withThrowingTaskGroup(of: Void.self) { group throws -> Void in
                group.addTask { try await worker.run() }
                let handlerStarted = try await eventually { started.withLock { $0 } }
                #expect(handlerStarted)
                group.cancelAll()
            }
            #expect(gateway.engine.failedJobKeys.isEmpty)
            #expect(gateway.engine.completedJobKeys.isEmpty)
        }
    }

    @Test func maxJobsActiveLimitsConcurrency() async throws {
        try await withGatewayAndClientService { client, gateway in
            let running = Mutex((now: 0, peak: 0))
            var configuration = JobWorkerConfiguration(jobType: "t")
            configuration.maxJobsActive = 2
            configuration.requestTimeout = .milliseconds(300)
            let worker = JobWorker(client: client, configuration: configuration) { _ in
                running.withLock {
                    $0.now += 1; $0.peak = max($0.peak, $0.now)
                }
                try await Task.sleep(for: .milliseconds(50))
                running.withLock { $0.now -= 1 }
                return .complete
            }
            try await withServices([client]) {
                // the six jobs wait before the worker starts, so that it always has more than it may run
                _ = try await client.deployResource(
                    name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
                for _ in 0..<6 { _ = try await client.createProcessInstance(bpmnProcessId: "p") }
                let completed = try await withServices([worker]) {
                    try await eventually { gateway.engine.completedJobKeys.count == 6 }
                }
                #expect(completed)
            }
            #expect(running.withLock { $0.peak } == 2)
        }
    }
}

/// A small JSON value for building variables in tests.
enum AnyCodableValue: Encodable, ExpressibleByBooleanLiteral, ExpressibleByStringLiteral {
    case bool(Bool)
    case string(String)

    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(stringLiteral value: String) { self = .string(value) }
    init(_ value: String) { self = .string(value) }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .bool(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }
}
