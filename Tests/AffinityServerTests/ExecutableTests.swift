import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

@Suite("affinity-server executable")
struct ExecutableTests {
    @Test func sigtermDrainsClientsWith1001AndExitsZero() async throws {
        try await withServerProcess(["--drain-timeout", "10s"]) { server in
            let url = "ws://127.0.0.1:\(server.port)/v1/ws"
            let pid = server.process.processIdentifier
            let started = ContinuousClock.now
            try await withSocket(url: url) { client in
                try await withSocket(url: url) { worker in
                    client.send(.hello(role: .client, clientId: "c"))
                    let clientWelcome = try await client.receive()
                    #expect(clientWelcome == .welcome(replica: "process-replica", protocolVersion: 1))
                    client.send(.subscribe(key: ProcessInstanceKey(5)!))
                    let subscribed = try await client.receive()
                    #expect(subscribed == .subscribed(key: ProcessInstanceKey(5)!))
                    worker.send(.hello(role: .worker, clientId: "w"))
                    let workerWelcome = try await worker.receive()
                    #expect(workerWelcome == .welcome(replica: "process-replica", protocolVersion: 1))
                    kill(pid, SIGTERM)
                    for socket in [client, worker] {
                        let drain = try await socket.receive()
                        #expect(drain == .drain)
                        let closed = await socket.nextEvent()
                        #expect(closed == .closed(code: 1001, reason: "draining"))
                    }
                }
            }
            let status = await server.waitForExit(timeout: .seconds(10))
            #expect(status == 0, "\(server.log)")
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    @Test func sigintAlsoShutsDownCleanly() async throws {
        try await withServerProcess { server in
            server.signal(SIGINT)
            #expect(await server.waitForExit(timeout: .seconds(10)) == 0)
        }
    }

    @Test(arguments: [
        ["--park-ttl", "soon"], ["--port", "70000"], ["--port", "http"], ["--ack-timeout", "0"],
        ["--client-token-file", "/nonexistent/tokens"], ["--log-level", "loud"], ["--log-format", "xml"],
        ["--max-message-bytes", "12"], ["--no-such-flag"], ["--event-loop-threads", "0"],
        ["--event-loop-threads", "many"], ["--max-connections", "0"], ["--max-connections", "lots"],
        ["--handshake-timeout", "never"], ["--max-outcomes-in-flight", "0"], ["--max-in-flight-bytes", "12"],
    ])
    func invalidConfigurationExitsNonZeroWithOneLine(_ arguments: [String]) async throws {
        let (status, lines) = try await runServerBinary(arguments)
        #expect(status != 0)
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.hasPrefix("affinity-server: ") == true, "\(lines)")
    }

    @Test func invalidEnvironmentVariableIsNamed() async throws {
        let (status, lines) = try await runServerBinary([], environment: ["AFFINITY_DRAIN_TIMEOUT": "forever"])
        #expect(status != 0)
        #expect(
            lines == [
                #"affinity-server: AFFINITY_DRAIN_TIMEOUT must be a positive duration such as 500ms, 10s, 5m, 1h or plain seconds, got "forever""#
            ])
    }

    @Test func emptyTokenFileIsRejected() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("tokens")
            try write("\n\n", to: file)
            let (status, lines) = try await runServerBinary(["--worker-token-file", file.path])
            #expect(status != 0)
            #expect(lines.count == 1)
            #expect(lines.first?.contains("holds no token") == true)
        }
    }

    @Test func helpListsEveryOption() async throws {
        let process = Process()
        process.executableURL = builtProductsDirectory().appendingPathComponent("affinity-server")
        process.arguments = ["--help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        for option in [
            "--host", "--port", "--metrics-port", "--replica-id", "--client-token-file", "--worker-token-file",
            "--park-ttl",
            "--ack-timeout", "--max-message-bytes", "--max-subscriptions", "--max-outbound-bytes", "--ping-interval",
            "--drain-timeout", "--log-level", "--log-format", "--event-loop-threads", "--max-connections",
            "--handshake-timeout", "--max-outcomes-in-flight", "--max-in-flight-bytes",
        ] {
            #expect(output.contains(option), "\(option)")
        }
    }

    @Test func connectionBoundsComeFromTheEnvironment() async throws {
        // 3 s, not less: under the parallel suite a fresh replica can take over a second to read the first
        // upgrade request, which a 1 s timeout then closed ("I/O on closed channel"); the default is 10 s, so a
        // close within 8 s still proves the variable applies
        let environment = ["AFFINITY_MAX_CONNECTIONS": "1", "AFFINITY_HANDSHAKE_TIMEOUT": "3s"]
        try await withServerProcess(environment: environment) { server in
            try await RawWebSocket.with(port: server.port) { _ in
                let head = try await refusedUpgrade(port: server.port)
                #expect(head.hasPrefix("HTTP/1.1 503"), "\(head)")
            }
            try await RawWebSocket.with(port: server.port, upgrade: false) { idle in
                try await idle.expectTCPClose(within: .seconds(8))
            }
        }
        try await withServerProcess(["--max-connections", "1", "--handshake-timeout", "3s"]) { server in
            try await RawWebSocket.with(port: server.port) { _ in
                let head = try await refusedUpgrade(port: server.port)
                #expect(head.hasPrefix("HTTP/1.1 503"), "\(head)")
            }
        }
    }

    /// `AFFINITY_MAX_OUTCOMES_IN_FLIGHT` (and so `--max-outcomes-in-flight`) reaches the sessions: with a
    /// bound of 1, a worker's second outcome is not read before the first was answered.
    @Test func theInFlightBoundComesFromTheEnvironment() async throws {
        try await withServerProcess(environment: ["AFFINITY_MAX_OUTCOMES_IN_FLIGHT": "1"]) { server in
            let url = "ws://127.0.0.1:\(server.port)/v1/ws"
            let keys = [ProcessInstanceKey(71)!, ProcessInstanceKey(72)!]
            try await withSocket(url: url) { client in
                client.send(.hello(role: .client, clientId: "c"))
                _ = try await client.receive()
                for key in keys {
                    client.send(.subscribe(key: key))
                    #expect(try await client.receive() == .subscribed(key: key))
                }
                try await withSocket(url: url) { worker in
                    worker.send(.hello(role: .worker, clientId: "w"))
                    _ = try await worker.receive()
                    let outcomes = try zip(["e1", "e2"], keys).map {
                        try Outcome(id: $0, key: $1, variables: Array("{}".utf8))
                    }
                    for outcome in outcomes { worker.send(.outcome(outcome)) }
                    #expect(try await client.receive() == .outcome(outcomes[0]))
                    await client.expectSilence(for: .milliseconds(500))
                    client.send(.ack(id: "e1"))
                    #expect(try await worker.receive() == .result(id: "e1", status: .delivered))
                    #expect(try await client.receive() == .outcome(outcomes[1]))
                    client.send(.ack(id: "e2"))
                    #expect(try await worker.receive() == .result(id: "e2", status: .delivered))
                }
            }
        }
    }

    /// Sends an upgrade request over a fresh socket, expects the server to close it after its
    /// answer, and returns the answer's head.
    private func refusedUpgrade(port: Int) async throws -> String {
        try await RawWebSocket.with(port: port, upgrade: false) { socket in
            try await socket.write(Array(RawWebSocket.upgradeRequest.utf8))
            let head = try await socket.readHTTPHead()
            try await socket.waitForTCPClose()
            return head
        }
    }

    @Test func eventLoopThreadsSizeTheGroupThatAlsoRunsTheTasks() async throws {
        try await withServerProcess(["--event-loop-threads", "1"]) { server in
            let url = "ws://127.0.0.1:\(server.port)/v1/ws"
            try await withSocket(url: url) { client in
                client.send(.hello(role: .client, clientId: "c"))
                let welcome = try await client.receive()
                #expect(welcome == .welcome(replica: "process-replica", protocolVersion: 1))
            }
            #expect(server.log.contains("affinity.event_loop_threads=1"), "\(server.log)")
            #expect(server.log.contains("affinity.tasks_on_event_loops=true"), "\(server.log)")
            server.signal(SIGTERM)
            #expect(await server.waitForExit(timeout: .seconds(10)) == 0)
        }
        let (status, lines) = try await runServerBinary([], environment: ["AFFINITY_EVENT_LOOP_THREADS": "-2"])
        #expect(status != 0)
        #expect(lines.count == 1 && lines.first?.contains("AFFINITY_EVENT_LOOP_THREADS") == true, "\(lines)")
    }

    @Test func jsonLogsAreOneObjectPerLineWithDottedKeys() async throws {
        try await withServerProcess(["--log-format", "json", "--log-level", "debug"]) { server in
            server.signal(SIGTERM)
            #expect(await server.waitForExit(timeout: .seconds(10)) == 0)
            let lines = server.log.split(separator: "\n")
            #expect(lines.count >= 3)
            for line in lines {
                let object = try JSONScanner.scanObject(Array(line.utf8))
                #expect(object["level"]?.stringValue != nil, "\(line)")
                #expect(object["message"]?.stringValue != nil, "\(line)")
                #expect(object["time"]?.stringValue != nil, "\(line)")
            }
            #expect(lines.contains { $0.contains(#""affinity.replica":"process-replica""#) })
            #expect(lines.contains { $0.contains(#""message":"drained""#) })
        }
    }
}
