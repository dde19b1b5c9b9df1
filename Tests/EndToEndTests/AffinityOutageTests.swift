import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import ZeebeClient
import ZeebeTestGateway

extension EndToEndTests {
    /// An outage of the whole affinity service delays outcomes but raises no incident.
    @Suite("affinity service outage")
    struct AffinityOutageTests {
        /// Two `affinity-server` replicas (each its own process on a fixed port) serve one
        /// `affinity-worker`. Both are frozen (SIGSTOP) until the worker holds 5 jobs whose delivery waits
        /// for an answer, then killed (SIGKILL) and kept down for 30 s, during which 5 more instances are
        /// created; then they are started again on the same ports.
        ///
        /// During the outage the worker fails the 5 jobs it held with their 3 retries unchanged and, once
        /// the long poll that was running has ended, activates nothing (its activation counter stands still,
        /// the 5 new jobs stay activatable). After
        /// the restart every job completes; no incident is ever raised and no FailJob call ever lowered
        /// the retries. (Before, every failed delivery cost a retry: 5 jobs, 15 FailJob calls, 5
        /// incidents within 12 s.)
        @Test func allReplicasDownFor30SecondsRaisesNoIncidentAndEveryJobCompletesAfterwards() async throws {
            try await withChildProcessSet { set in
                let gateway = try await TestGatewayProcess.start(in: set)
                let first = try freeFixedPort()
                var second = try freeFixedPort()
                while second == first { second = try freeFixedPort() }
                let ports = [first, second]
                @Sendable func startReplica(_ index: Int) async throws -> ChildProcess {
                    try await set.start(
                        "affinity-server",
                        ["--host", "127.0.0.1", "--port", "\(ports[index])", "--replica-id", "r\(index + 1)"],
                        name: "replica r\(index + 1)")
                }
                var replicas = [try await startReplica(0), try await startReplica(1)]
                let urls = ports.flatMap { ["--affinity-url", "ws://127.0.0.1:\($0)/v1/ws"] }
                let worker = try await set.start(
                    "affinity-worker",
                    urls + [
                        "--host", "127.0.0.1", "--port", "0", "--delivery-timeout", "45s", "--job-timeout", "60s",
                        "--failure-backoff", "500ms", "--failure-backoff-max", "3s",
                    ],
                    name: "worker", environment: gateway.zeebeEnvironment)
                try await withHTTPClient { http in
                    let probe = WorkerProbe(http: http, worker: worker)
                    #expect(try await eventually(timeout: .seconds(60)) { try await probe.isReady() }, "\(worker.log)")

                    var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
                    configuration.transportSecurity = .plaintext
                    try await withZeebeClient(configuration: configuration) { zeebe in
                        _ = try await zeebe.deployResources(EndToEndTests.publishOnlyProcess)
                        func create(_ count: Int, from start: Int) async throws -> Set<String> {
                            var keys: Set<String> = []
                            for index in start..<(start + count) {
                                let instance = try await zeebe.createProcessInstance(
                                    bpmnProcessId: "publish-only", variables: try ZeebeVariables(["index": index]))
                                keys.insert(String(instance.processInstanceKey))
                            }
                            return keys
                        }
                        // (the worker paused polling at its start, before it was connected)
                        let pausesBefore =
                            worker.log.components(separatedBy: "activation paused: polling waits").count - 1
                        // Jobs in flight when the service goes away: their deliveries hang on frozen replicas.
                        for replica in replicas { replica.signal(SIGSTOP) }
                        let held = try await create(5, from: 0)
                        let holding = try await eventually(timeout: .seconds(40)) {
                            try await probe.metric("zeebe_worker_jobs_activated_total") >= 5
                        }
                        #expect(holding, "the worker did not take the 5 jobs:\n\(worker.log)")
                        for replica in replicas {
                            replica.signal(SIGKILL)
                            _ = await replica.waitForExit(timeout: .seconds(30))
                        }
                        let outageEnd = ContinuousClock.now + .seconds(30)

                        // The held jobs are failed at once, their retries kept; then nothing is activated.
                        var engine = try await gateway.engine(http)
                        let failedBack = try await eventually(timeout: .seconds(20)) {
                            engine = try await gateway.engine(http)
                            return engine.jobs.filter { held.contains($0.processInstanceKey) }
                                .allSatisfy { !$0.failures.isEmpty && $0.state != .activated }
                        }
                        #expect(failedBack, "\(engine.jobs)\n\(worker.log)")
                        #expect(try await eventually(timeout: .seconds(20)) { try await !probe.isReady() })
                        // the worker closes its job stream once it drained it (jobs pushed meanwhile are handed
                        // back with their retries); from then on nothing is activated
                        let streamClosed = try await eventually(timeout: .seconds(20)) {
                            try await gateway.engine(http).openJobStreams == 0
                        }
                        #expect(streamClosed, "the worker kept its job stream open without a replica")
                        // a long poll running when the connection went is not cut short (cancelling it could drop
                        // jobs the gateway already sent): it ends within its request timeout, handing back what
                        // it brings; then polling pauses
                        let pollPaused = await eventually(timeout: .seconds(20)) {
                            worker.log.components(separatedBy: "activation paused: polling waits").count - 1
                                > pausesBefore
                        }
                        #expect(pollPaused, "the worker kept polling without a replica:\n\(worker.log)")
                        let activatedAtOutage = try await probe.metric("zeebe_worker_jobs_activated_total")
                        let created = try await create(5, from: 5)
                        let all = held.union(created)
                        while ContinuousClock.now < outageEnd {
                            engine = try await gateway.engine(http)
                            #expect(engine.incidents.isEmpty, "incident during the outage: \(engine.incidents)")
                            if !engine.incidents.isEmpty { break }
                            try await Task.sleep(for: .seconds(1))
                        }
                        engine = try await gateway.engine(http)
                        let jobs = engine.jobs.filter { all.contains($0.processInstanceKey) }
                        #expect(jobs.count == 10)
                        #expect(jobs.allSatisfy { $0.state == .activatable && $0.retries == 3 }, "\(jobs)")
                        #expect(
                            jobs.filter { created.contains($0.processInstanceKey) }.allSatisfy { $0.failures.isEmpty },
                            "jobs created during the outage were activated: \(jobs)")
                        #expect(
                            try await probe.metric("zeebe_worker_jobs_activated_total") == activatedAtOutage,
                            "the worker activated jobs while no replica was up:\n\(worker.log)")
                        #expect(worker.log.contains("activation paused"), "\(worker.log)")
                        #expect(engine.openJobStreams == 0, "the worker kept its job stream open during the outage")

                        // The service comes back on the same addresses: every job completes, none raised an incident.
                        replicas = [try await startReplica(0), try await startReplica(1)]
                        let completed = try await eventually(timeout: .seconds(120)) {
                            engine = try await gateway.engine(http)
                            return engine.jobs.filter { all.contains($0.processInstanceKey) && $0.state == .completed }
                                .count == 10
                        }
                        let finalJobs = engine.jobs.filter { all.contains($0.processInstanceKey) }
                        #expect(completed, "\(finalJobs)\n\(worker.log)")
                        #expect(engine.incidents.isEmpty, "\(engine.incidents)")
                        // job push is on by default: the stream closed during the outage is open again
                        let streaming = try await eventually(timeout: .seconds(30)) {
                            try await gateway.engine(http).openJobStreams == 1
                        }
                        #expect(streaming, "the worker did not reopen its job stream:\n\(worker.log)")
                        let failures = finalJobs.flatMap(\.failures)
                        #expect(failures.count >= 5)
                        #expect(
                            failures.allSatisfy { $0.retries == 3 }, "\(failures)")
                        // the held jobs: failed for the lost connection, with a back-off (and, when the poll that
                        // was running took one again after its back-off, handed back at once)
                        let heldFailures = finalJobs.filter { held.contains($0.processInstanceKey) }.flatMap(\.failures)
                        let lostConnection = heldFailures.filter {
                            $0.message.contains("outcome not acknowledged by the affinity service")
                        }
                        #expect(lostConnection.count >= 5)
                        #expect(lostConnection.allSatisfy { $0.retryBackOffMilliseconds > 0 }, "\(heldFailures)")
                        #expect(
                            heldFailures.allSatisfy {
                                lostConnection.contains($0) || $0.message.contains("it cannot take jobs now")
                            }, "\(heldFailures)")
                        #expect(
                            engine.instances.filter { all.contains($0.key) }.allSatisfy { $0.state == .completed },
                            "\(engine.instances)")
                        print(
                            "affinity outage: \(failures.count) FailJob calls, all with retries 3; 10 jobs completed"
                                + " after the replicas came back; replicas up: \(replicas.map(\.isRunning))")
                    }
                }
            }
        }
    }
}

/// Runs `body` with an HTTP client for the stack's endpoints, shut down afterwards (also when `body` throws).
func withHTTPClient<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: stackHTTPConfiguration())
    do {
        let result = try await body(http)
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

/// Reads an `affinity-worker`'s health and metrics.
struct WorkerProbe: Sendable {
    let http: HTTPClient
    let worker: ChildProcess

    /// Whether `/health/ready` answers 200 (connected to a replica).
    func isReady() async throws -> Bool {
        let response = try await http.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(worker.port)/health/ready"), timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        return response.status == .ok
    }

    /// The sum of the Prometheus samples named `name`.
    func metric(_ name: String) async throws -> Int {
        let response = try await http.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(worker.port)/metrics"), timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return text.split(separator: "\n")
            .filter { $0.hasPrefix(name) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0) { $0 + Int($1) }
    }
}
