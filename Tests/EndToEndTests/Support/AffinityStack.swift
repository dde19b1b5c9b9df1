import AffinityTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ZeebeTestGateway

/// The processes of one end-to-end run, each its own process on loopback: the test gateway
/// (`zeebe-test-gateway`, inspected over its test-only HTTP endpoint), a `redis-server`, three
/// `affinity-server` replicas in cluster mode (mutual-TLS peer channel with certificates made at test
/// time), two `affinity-worker`s and two `affinity-demo` front-ends, both given all three replica URLs.
///
/// The URL orders differ so that the first replica, `replicas[0]`, holds demo 0 and worker 0, the second
/// holds demo 1 and the third holds worker 1: losing `replicas[0]` moves a front-end and a worker.
struct AffinityStack: Sendable {
    let gateway: TestGatewayProcess
    let redis: RedisServerProcess
    /// `r1`, `r2`, `r3`.
    let replicas: [ChildProcess]
    let workers: [ChildProcess]
    let demos: [ChildProcess]
    let http: HTTPClient

    /// Every process of the stack but Redis, for readiness checks and failure messages.
    var children: [ChildProcess] { [gateway.process] + replicas + workers + demos }

    /// The WebSocket URL of a replica.
    static func url(_ replica: ChildProcess) -> String { "ws://127.0.0.1:\(replica.port)/v1/ws" }
}

/// The `zeebe-test-gateway` process: its gRPC port and its inspection endpoint.
struct TestGatewayProcess: Sendable {
    let process: ChildProcess
    let inspectionPort: Int

    var port: Int { process.port }

    /// The environment a worker or demo gets: the Zeebe gateway in Camunda's variables.
    var zeebeEnvironment: [String: String] {
        ["ZEEBE_ADDRESS": "127.0.0.1:\(port)", "ZEEBE_INSECURE_CONNECTION": "true"]
    }

    /// Starts `zeebe-test-gateway` in `set` and reads both ports from its stdout.
    static func start(in set: ChildProcessSet) async throws -> TestGatewayProcess {
        let process = try await set.start(
            "zeebe-test-gateway", [], name: "test gateway", port: .outputLine(prefix: "port="))
        var inspectionPort: Int?
        let found = await eventually(timeout: .seconds(30)) {
            inspectionPort = ChildProcessSet.reportedPort(
                .outputLine(prefix: "inspection-port="), logFile: process.logFile, outputFile: process.outputFile)
            return inspectionPort != nil
        }
        guard found, let inspectionPort else {
            throw EndToEndFailure(
                "the test gateway did not report its inspection port:\n\(process.output)\n\(process.log)")
        }
        return TestGatewayProcess(process: process, inspectionPort: inspectionPort)
    }

    /// The engine's state, read from the inspection endpoint.
    func engine(_ http: HTTPClient) async throws -> EngineInspection {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(inspectionPort)/engine")
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status == .ok else {
            throw EndToEndFailure("GET /engine answered \(response.status): \(String(buffer: body))")
        }
        return try JSONDecoder().decode(EngineInspection.self, from: body)
    }
}

/// Settings of an ``AffinityStack``.
struct AffinityStackOptions: Sendable {
    /// How long a demo request waits for its outcome.
    var demoTimeout = "60s"
    /// Extra arguments for every replica.
    var replicaArguments: [String] = []
}

/// Starts the whole stack, waits until every process is ready, runs `body`, then stops everything
/// (also when starting or `body` fails).
func withAffinityStack<T: Sendable>(
    _ options: AffinityStackOptions = AffinityStackOptions(), _ body: (AffinityStack) async throws -> T
) async throws -> T {
    // `AFFINITY_E2E_LOG_LEVEL=debug swift test ...` runs the stack's processes at that level, for a
    // failure's diagnosis (their logs are in failure messages).
    let logLevel = ProcessInfo.processInfo.environment["AFFINITY_E2E_LOG_LEVEL"].map { ["--log-level", $0] } ?? []
    return try await withTestPKI { pki in
        let authority = try await offloaded { try pki.makeAuthority("e2e-cluster") }
        let redis = RedisServerProcess(
            port: try freeFixedPort(), directory: pki.directory, extraArguments: [], tls: false)
        try await redis.start()
        defer { redis.stop() }
        // Redis stops after every other process (the replicas drain with it).
        return try await withChildProcessSet { set in
            let gateway = try await TestGatewayProcess.start(in: set)
            var usedPorts: Set<Int> = [redis.port]
            var replicas: [ChildProcess] = []
            for id in ["r1", "r2", "r3"] {
                let identity = try await offloaded { try pki.issue(id, by: authority) }
                var peerPort = try freeFixedPort()
                while usedPorts.contains(peerPort) { peerPort = try freeFixedPort() }
                usedPorts.insert(peerPort)
                let arguments =
                    [
                        "--host", "127.0.0.1", "--port", "0", "--replica-id", id,
                        "--redis-url", "redis://127.0.0.1:\(redis.port)",
                        "--peer-port", "\(peerPort)", "--peer-advertise-address", "127.0.0.1:\(peerPort)",
                        "--peer-tls-cert", identity.certificatePath, "--peer-tls-key", identity.keyPath,
                        "--peer-tls-ca", authority.certificatePath, "--ack-timeout", "5s",
                    ] + logLevel + options.replicaArguments
                replicas.append(try await set.start("affinity-server", arguments, name: "replica \(id)"))
            }
            for replica in replicas { try await replica.waitForLog("registered replica") }
            func urls(_ order: [Int]) -> [String] {
                order.flatMap { ["--affinity-url", AffinityStack.url(replicas[$0])] }
            }
            let local = ["--host", "127.0.0.1", "--port", "0"] + logLevel
            var workers: [ChildProcess] = []
            for (index, order) in [[0, 2, 1], [2, 1, 0]].enumerated() {
                workers.append(
                    try await set.start(
                        "affinity-worker", urls(order) + local + ["--failure-backoff", "200ms"],
                        name: "worker \(index)", environment: gateway.zeebeEnvironment))
            }
            var demos: [ChildProcess] = []
            for (index, order) in [[0, 1, 2], [1, 2, 0]].enumerated() {
                demos.append(
                    try await set.start(
                        "affinity-demo", urls(order) + local + ["--timeout", options.demoTimeout],
                        name: "demo \(index)", environment: gateway.zeebeEnvironment))
            }
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: stackHTTPConfiguration())
            do {
                let stack = AffinityStack(
                    gateway: gateway, redis: redis, replicas: replicas, workers: workers, demos: demos, http: http)
                try await stack.waitUntilReady(replicas + workers + demos)
                let result = try await body(stack)
                try await http.shutdown()
                return result
            } catch {
                try? await http.shutdown()
                throw error
            }
        }
    }
}

/// An HTTP client for hundreds of concurrent requests per front-end.
func stackHTTPConfiguration() -> HTTPClient.Configuration {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 400
    configuration.timeout.connect = .seconds(30)
    configuration.timeout.read = .seconds(120)
    return configuration
}

/// Runs blocking work (openssl) on a Dispatch thread instead of the small cooperative thread pool.
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// An HTTP answer: status, headers and body.
struct HTTPAnswer: Sendable {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object.
    func object() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EndToEndFailure("not a JSON object: \(text)")
        }
        return object
    }
}

extension AffinityStack {
    /// Waits (up to 60 s each) until `children` answer 200 on `/health/ready`.
    func waitUntilReady(_ children: [ChildProcess]) async throws {
        for child in children {
            let ready = await eventually(timeout: .seconds(60)) {
                (try? await get(child, "/health/ready").status) == .ok
            }
            guard ready else { throw EndToEndFailure("\(child.name) did not become ready:\n\(child.log)") }
        }
    }

    /// The test gateway's engine state.
    func engine() async throws -> EngineInspection { try await gateway.engine(http) }

    func get(_ child: ChildProcess, _ path: String) async throws -> HTTPAnswer {
        try await send(child, path, method: .GET, body: nil)
    }

    func post(_ child: ChildProcess, _ path: String, json: [String: Any]) async throws -> HTTPAnswer {
        try await send(child, path, method: .POST, body: try JSONSerialization.data(withJSONObject: json))
    }

    func send(_ child: ChildProcess, _ path: String, method: HTTPMethod, body: Data?) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(child.port)\(path)")
        request.method = method
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await http.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return HTTPAnswer(status: response.status, headers: response.headers, body: Data(buffer: bytes))
    }

    /// The logs of every process, for a failure message.
    var logs: String {
        children.map { "== \($0.name)\n\($0.log.suffix(6000))" }.joined(separator: "\n")
    }
}

extension AffinityStack {
    /// The sum of the Prometheus samples of `name` whose line contains `label`, from `child`'s `/metrics`.
    func metric(_ child: ChildProcess, _ name: String, containing label: String) async throws -> Int {
        let answer = try await get(child, "/metrics")
        guard answer.status == .ok else { throw EndToEndFailure("\(child.name) /metrics: \(answer.status)") }
        return answer.text.split(separator: "\n")
            .filter { $0.hasPrefix(name) && $0.contains(label) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0) { $0 + Int($1) }
    }

    /// Outcomes a worker sent to its replica and is still waiting to have answered (from its metrics).
    func outcomesAwaitingAnswer(_ worker: ChildProcess) async throws -> Int {
        let name = "affinity_publisher_pending_outcomes"
        return try await metric(worker, name, containing: name)
    }
}
