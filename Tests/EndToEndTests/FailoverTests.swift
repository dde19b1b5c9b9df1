import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import ZeebeTestGateway

/// A front-end and a worker that both list two replicas keep answering after their replica is
/// killed with SIGKILL: both reconnect to the other one.
@Suite("end to end: replica failover", .serialized)
struct FailoverTests {
    @Test func frontEndAndWorkerMoveToTheOtherReplicaWhenTheirsIsKilled() async throws {
        try await withTestGateway { gateway in
            let serverArguments = ["--host", "127.0.0.1", "--port", "0"]
            try await withChildProcess("affinity-server", serverArguments + ["--replica-id", "first"]) { first in
                try await withChildProcess("affinity-server", serverArguments + ["--replica-id", "second"]) { second in
                    let urls = [first, second].flatMap { ["--affinity-url", "ws://127.0.0.1:\($0.port)/v1/ws"] }
                    let common = urls + ["--host", "127.0.0.1", "--port", "0"]
                    try await withChildProcesses([
                        ("affinity-worker", common + ["--failure-backoff", "200ms"], zeebeEnvironment(gateway)),
                        ("affinity-demo", common + ["--timeout", "30s"], zeebeEnvironment(gateway)),
                    ]) { children in
                        let http = HTTPClient(eventLoopGroupProvider: .singleton)
                        defer { _ = http.shutdown() }
                        let stack = AffinityStack(
                            gateway: gateway, server: first, workers: [children[0]], demos: [children[1]], http: http)
                        try await Self.waitReady(stack, children)
                        try await Self.expectOwnOutcomes(stack, count: 20, label: "before")
                        first.signal(SIGKILL)
                        #expect(await first.waitForExit(timeout: .seconds(10)) != nil)
                        try await Self.waitReady(stack, children)
                        try await Self.expectOwnOutcomes(stack, count: 60, label: "after")
                        #expect(second.isRunning)
                        // Both were on the first replica, lost it, and are now on the second.
                        for child in children {
                            #expect(child.log.contains("affinity.replica=first"), "\(child.log)")
                            #expect(child.log.contains("connection to the affinity service lost"), "\(child.log)")
                            #expect(child.log.contains("affinity.replica=second"), "\(child.log)")
                        }
                    }
                }
            }
        }
    }

    static func waitReady(_ stack: AffinityStack, _ children: [ChildProcess]) async throws {
        for child in children {
            let ready = await eventually(timeout: .seconds(30)) {
                (try? await stack.get(child, "/health/ready").status) == .ok
            }
            guard ready else { throw EndToEndFailure("\(child.name) did not become ready:\n\(child.log)") }
        }
    }

    static func expectOwnOutcomes(_ stack: AffinityStack, count: Int, label: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    let requestID = "\(label)-\(index)-\(UUID().uuidString)"
                    let answer = try await stack.post(
                        stack.demos[0], "/process/order-process", json: ["requestId": requestID])
                    #expect(answer.status == .ok, "\(String(decoding: answer.body, as: UTF8.self))")
                    if answer.status == .ok {
                        #expect(try answer.object()["requestId"] as? String == requestID)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
