import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ZeebeTestGateway

/// The processes of one end-to-end run: the test gateway (in this process, so the test can inspect
/// its engine), one `affinity-server`, two `affinity-worker`s and two `affinity-demo`s, each its own
/// process on loopback.
struct AffinityStack: Sendable {
    let gateway: TestGateway
    let server: ChildProcess
    let workers: [ChildProcess]
    let demos: [ChildProcess]
    let http: HTTPClient
}

/// The environment a worker or demo gets: the Zeebe gateway in Camunda's variables.
func zeebeEnvironment(_ gateway: TestGateway) -> [String: String] {
    ["ZEEBE_ADDRESS": "127.0.0.1:\(gateway.port)", "ZEEBE_INSECURE_CONNECTION": "true"]
}

/// Starts the whole stack, waits until both demos are ready, runs `body`, then stops everything.
func withAffinityStack<T: Sendable>(
    demoTimeout: String = "30s", _ body: (AffinityStack) async throws -> T
) async throws -> T {
    try await withTestGateway { gateway in
        try await withChildProcess(
            "affinity-server", ["--host", "127.0.0.1", "--port", "0", "--replica-id", "e2e-replica"]
        ) { server in
            let url = "ws://127.0.0.1:\(server.port)/v1/ws"
            let environment = zeebeEnvironment(gateway)
            let worker = (
                executable: "affinity-worker",
                arguments: ["--affinity-url", url, "--host", "127.0.0.1", "--port", "0", "--failure-backoff", "500ms"],
                environment: environment
            )
            let demo = (
                executable: "affinity-demo",
                arguments: ["--affinity-url", url, "--host", "127.0.0.1", "--port", "0", "--timeout", demoTimeout],
                environment: environment
            )
            return try await withChildProcesses([worker, worker, demo, demo]) { children in
                var configuration = HTTPClient.Configuration()
                configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 300
                configuration.timeout.read = .seconds(60)
                let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                do {
                    let stack = AffinityStack(
                        gateway: gateway, server: server, workers: Array(children[0..<2]),
                        demos: Array(children[2..<4]),
                        http: http)
                    for child in children {
                        let ready = await eventually(timeout: .seconds(30)) {
                            (try? await stack.get(child, "/health/ready").status) == .ok
                        }
                        guard ready else { throw EndToEndFailure("\(child.name) did not become ready:\n\(child.log)") }
                    }
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
}

/// An HTTP answer: status, headers and body.
struct HTTPAnswer: Sendable {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    let body: Data

    /// The body as a JSON object.
    func object() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EndToEndFailure("not a JSON object: \(String(decoding: body, as: UTF8.self))")
        }
        return object
    }
}

extension AffinityStack {
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
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return HTTPAnswer(status: response.status, headers: response.headers, body: Data(buffer: bytes))
    }
}
