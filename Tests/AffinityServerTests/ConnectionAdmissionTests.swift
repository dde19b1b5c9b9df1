import AffinityProtocol
import AffinityServer
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// What a replica does with connections before and at the upgrade: the handshake timeout for
/// sockets that never send a request head, and the cap on WebSocket connections.
@Suite("Connection admission")
struct ConnectionAdmissionTests {
    let hello = #"{"type":"hello","role":"client","clientId":"admitted"}"#

    @Test func aSocketThatSendsNothingIsClosedAfterTheHandshakeTimeout() async throws {
        try await withServer({ $0.handshakeTimeout = .milliseconds(500) }) { server in
            try await RawWebSocket.with(port: server.port, upgrade: false) { socket in
                let start = ContinuousClock.now
                try await socket.expectTCPClose(within: .seconds(8))
                #expect(ContinuousClock.now - start >= .milliseconds(400))
            }
            #expect(server.metric("affinity_handshake_timeouts_total") == 1)
        }
    }

    @Test func aRequestHeadSentByteByByteIsClosedAfterTheHandshakeTimeout() async throws {
        try await withServer({ $0.handshakeTimeout = .milliseconds(800) }) { server in
            try await RawWebSocket.with(port: server.port, upgrade: false) { socket in
                // a slowloris: the head trickles in and never ends
                let partial = Array("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ".utf8)
                let start = ContinuousClock.now
                try await socket.write(partial)
                var closed = false
                for _ in 0..<40 where !closed {
                    try await Task.sleep(for: .milliseconds(100))
                    do {
                        try await socket.write([UInt8(ascii: "a")])
                    } catch {
                        closed = true
                    }
                }
                if !closed { try await socket.expectTCPClose(within: .seconds(2)) }
                #expect(ContinuousClock.now - start < .seconds(4))
            }
        }
    }

    @Test func aConnectionWhoseHeadArrivedInTimeOutlivesTheTimeout() async throws {
        try await withServer({ $0.handshakeTimeout = .seconds(1) }) { server in
            try await RawWebSocket.with(port: server.port) { socket in
                try await Task.sleep(for: .milliseconds(2500))
                try await socket.sendText(hello)
                #expect(try await socket.nextFrame()?.text.contains(#""type":"welcome""#) == true)
            }
            #expect(server.metric("affinity_handshake_timeouts_total") ?? 0 == 0)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheHandshakeTimeout() async throws {
        try await withServer({ $0.handshakeTimeout = .seconds(1) }) { server in
            try await RawWebSocket.with(port: server.port, upgrade: false) { socket in
                try await socket.write(Array("GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
                #expect(try await socket.readHTTPHead().hasPrefix("HTTP/1.1 200"))
                // kept alive after the answer, then idle: closed like a socket that never sent a head
                let start = ContinuousClock.now
                try await socket.waitForTCPClose(within: .seconds(8))
                #expect(ContinuousClock.now - start >= .milliseconds(800))
            }
        }
    }

    @Test func aLongPollOutlastsTheHandshakeTimeout() async throws {
        try await withServer({ $0.handshakeTimeout = .seconds(1) }) { server in
            try await RawWebSocket.with(port: server.port, upgrade: false) { socket in
                // a request being answered is not idle, however long the answer takes
                try await socket.write(Array("GET /v1/outcomes/77?timeout=3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
                let head = try await socket.readHTTPHead(within: .seconds(10))
                #expect(head.hasPrefix("HTTP/1.1 204"), "\(head)")
            }
        }
    }

    @Test func upgradesOverTheCapAre503WhileOpenConnectionsAreServed() async throws {
        try await withServer({ $0.maxConnections = 2 }) { server in
            try await RawWebSocket.with(port: server.port) { first in
                try await first.sendText(hello)
                _ = try await first.nextFrame()
                try await RawWebSocket.with(port: server.port) { second in
                    try await second.sendText(hello)
                    _ = try await second.nextFrame()
                    // the third upgrade is refused with a JSON error
                    try await RawWebSocket.with(port: server.port, upgrade: false) { third in
                        try await third.write(Array(RawWebSocket.upgradeRequest.utf8))
                        let head = try await third.readHTTPHead()
                        #expect(head.hasPrefix("HTTP/1.1 503"), "\(head)")
                        try await third.waitForTCPClose()
                    }
                    let (status, body) = try await upgrade(server.port)
                    #expect(status == .serviceUnavailable)
                    #expect(body.contains(#""code":"unavailable""#), "\(body)")
                    #expect(server.metric("affinity_connections_refused_total") == 2)
                    // the open connections are still served, and so is plain HTTP
                    try await first.sendText(#"{"type":"subscribe","key":"5"}"#)
                    #expect(try await first.nextFrame()?.text.contains(#""type":"subscribed""#) == true)
                    try await second.sendText(#"{"type":"subscribe","key":"6"}"#)
                    #expect(try await second.nextFrame()?.text.contains(#""type":"subscribed""#) == true)
                    #expect(try await AuthTests().status(server.port, "/health/ready", token: nil) == .ok)
                }
            }
            // both closed: their slots are free again
            let deadline = ContinuousClock.now + .seconds(5)
            var admitted = false
            while !admitted && ContinuousClock.now < deadline {
                admitted = (try? await RawWebSocket.with(port: server.port) { _ in true }) ?? false
                if !admitted { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(admitted)
        }
    }

    @Test func refusedAndFailedUpgradesDoNotUseUpSlots() async throws {
        try await withServer({ $0.maxConnections = 1 }) { server in
            // upgrades refused for another reason (wrong path) and plain HTTP requests take no slot
            for _ in 0..<5 {
                #expect(try await AuthTests().status(server.port, "/elsewhere", token: nil, upgrade: true) == .notFound)
                #expect(try await AuthTests().status(server.port, "/health/live", token: nil) == .ok)
            }
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.sendText(hello)
                #expect(try await socket.nextFrame()?.text.contains(#""type":"welcome""#) == true)
            }
        }
    }

    /// One upgrade request over a fresh connection: the status and the body.
    private func upgrade(_ port: Int) async throws -> (HTTPResponse.Status, String) {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            let response = try await client.get("/v1/ws", headers: AuthTests.upgradeHeaders)
            return (response.status, response.body.map { String(buffer: $0) } ?? "")
        }
    }
}
