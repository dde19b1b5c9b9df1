import AffinityProtocol
import AffinityServer
import Testing

/// The frame layer over a real socket with hand-made frames: fragments, control frames, the close
/// handshake and its grace, the ping timer.
@Suite("WebSocket frames")
struct WebSocketFrameTests {
    let hello = #"{"type":"hello","role":"client","clientId":"raw"}"#

    @Test func aMessageSentWithTheUpgradeRequestIsAnswered() async throws {
        try await withServer { server in
            try await RawWebSocket.with(port: server.port, upgrade: false) { socket in
                try await socket.write(
                    Array(RawWebSocket.upgradeRequest.utf8)
                        + RawWebSocket.frame(opcode: 0x1, payload: Array(hello.utf8)))
                #expect(try await socket.readHTTPHead().hasPrefix("HTTP/1.1 101"))
                let welcome = try await socket.nextFrame()
                #expect(welcome?.text.contains(#""type":"welcome""#) == true)
            }
        }
    }

    @Test func fragmentedMessagesAreJoinedAndPingsAnswered() async throws {
        try await withServer { server in
            try await RawWebSocket.with(port: server.port) { socket in
                let bytes = Array(hello.utf8)
                try await socket.send(opcode: 0x1, fin: false, Array(bytes[0..<10]))
                // a ping between the fragments is answered at once
                try await socket.send(opcode: 0x9, Array("are you there".utf8))
                let pong = try await socket.nextFrame()
                #expect(pong == RawFrame(fin: true, opcode: 0xA, payload: Array("are you there".utf8)))
                try await socket.send(opcode: 0x0, fin: false, Array(bytes[10..<20]))
                try await socket.send(opcode: 0x0, fin: true, Array(bytes[20...]))
                let welcome = try await socket.nextFrame()
                #expect(welcome?.opcode == 0x1)
                #expect(
                    try AffinityMessage.decode(welcome?.payload ?? [])
                        == .welcome(replica: "test-replica", protocolVersion: 1))
            }
        }
    }

    @Test func aCloseFromThePeerIsAnsweredAndTheConnectionEnds() async throws {
        try await withServer { server in
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.sendText(hello)
                _ = try await socket.nextFrame()
                try await socket.sendClose(code: 1000)
                let close = try await socket.nextFrame()
                #expect(close?.opcode == 0x8)
                #expect(close?.closeCode == 1000)
                try await socket.expectTCPClose()
            }
            try await waitForNoConnections(server)
        }
    }

    @Test func aPeerThatDoesNotAnswerOurCloseIsDroppedAfterTheGrace() async throws {
        try await withServer({ $0.maxConsecutiveErrors = 1 }) { server in
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.sendText("garbage")
                let error = try await socket.nextFrame()
                #expect(error?.text.contains(#""code":"bad_request""#) == true)
                let close = try await socket.nextFrame()
                #expect(close?.closeCode == 1008)
                #expect(close?.closeReason == "too many protocol errors")
                // no answer from us: the server drops the TCP connection by itself
                try await socket.expectTCPClose(within: .seconds(10))
            }
            try await waitForNoConnections(server)
        }
    }

    @Test func aPeerThatAnswersOurCloseIsClosedWithoutWaitingForTheGrace() async throws {
        try await withServer({ $0.maxConsecutiveErrors = 1 }) { server in
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.sendText("garbage")
                _ = try await socket.nextFrame()
                #expect(try await socket.nextFrame()?.closeCode == 1008)
                try await socket.sendClose(code: 1000)
                // well inside the 3 s grace
                try await socket.expectTCPClose(within: .milliseconds(2500))
            }
        }
    }

    @Test func reservedBitsAndUnknownOpcodesAreProtocolErrors() async throws {
        try await withServer { server in
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.send(opcode: 0x1, rsv1: true, Array(hello.utf8))
                let close = try await socket.nextFrame()
                #expect(close?.closeCode == 1002)
                try await socket.sendClose(code: 1002)
                try await socket.expectTCPClose()
            }
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.send(opcode: 0x3, [1, 2, 3])
                #expect(try await socket.nextFrame()?.closeCode == 1002)
            }
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.send(opcode: 0x0, [1, 2, 3])
                #expect(try await socket.nextFrame()?.closeCode == 1002)
            }
        }
    }

    /// RFC 6455 section 5.1: a server closes the connection on an unmasked client frame.
    @Test(arguments: [0x1, 0x9] as [UInt8])
    func anUnmaskedFrameIsClosedWith1002(opcode: UInt8) async throws {
        try await withServer { server in
            try await RawWebSocket.with(port: server.port) { socket in
                try await socket.send(opcode: opcode, masked: false, Array(hello.utf8))
                // neither a welcome nor a pong: the close comes first
                let close = try await socket.nextFrame()
                #expect(close?.opcode == 0x8, "got \(String(describing: close))")
                #expect(close?.closeCode == 1002)
                // whatever the peer sends next, nothing more comes back and the connection ends
                try await socket.sendText(hello)
                try await socket.expectTCPClose()
            }
            try await RawWebSocket.with(port: server.port) { socket in
                // a masked message in progress does not excuse an unmasked continuation
                try await socket.send(opcode: 0x1, fin: false, Array(hello.utf8.prefix(10)))
                try await socket.send(opcode: 0x0, masked: false, Array(hello.utf8.dropFirst(10)))
                #expect(try await socket.nextFrame()?.closeCode == 1002)
            }
            try await waitForNoConnections(server)
        }
    }

    @Test func aFrameFarOverTheLimitIsClosedWith1009() async throws {
        try await withServer({ $0.maxMessageBytes = 1024 }) { server in
            try await RawWebSocket.with(port: server.port) { socket in
                // the frame layer accepts up to the limit plus 64 KiB; this header announces more
                try await socket.write(RawWebSocket.frame(opcode: 0x1, payload: Array(repeating: 32, count: 70_000)))
                #expect(try await socket.nextFrame()?.closeCode == 1009)
                try await socket.expectTCPClose()
            }
        }
    }

    @Test func pingsComeEveryIntervalAndAnsweredOnesKeepThePeer() async throws {
        try await withServer({ $0.pingInterval = .seconds(2) }) { server in
            // pongs are sent on the event loop as soon as a ping arrives
            try await RawWebSocket.with(port: server.port, autoPong: true) { socket in
                var payloads: Set<[UInt8]> = []
                for _ in 0..<2 {
                    let ping = try await socket.nextFrame(timeout: .seconds(10))
                    #expect(ping?.opcode == 0x9, "got \(String(describing: ping))")
                    payloads.insert(ping?.payload ?? [])
                }
                #expect(payloads.count == 2)
                // two intervals later the peer is still connected and served
                try await socket.sendText(hello)
                var answer = try await socket.nextFrame()
                while answer?.opcode == 0x9 { answer = try await socket.nextFrame() }
                #expect(answer?.text.contains(#""type":"welcome""#) == true)
            }
        }
    }

    @Test func aPeerThatDoesNotAnswerAPingIsClosedWith1001AndDropped() async throws {
        try await withServer({ $0.pingInterval = .milliseconds(200) }) { server in
            try await RawWebSocket.with(port: server.port) { socket in
                #expect(try await socket.nextFrame()?.opcode == 0x9)
                let close = try await socket.nextFrame()
                #expect(close?.closeCode == 1001)
                #expect(close?.closeReason == "ping timeout")
                try await socket.expectTCPClose()
            }
            try await waitForNoConnections(server)
        }
    }

    private func waitForNoConnections(_ server: TestServer) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let open = server.metricsText().split(separator: "\n")
                .filter { $0.hasPrefix("affinity_connections{") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }
                .reduce(0, +)
            if open == 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("connections still open")
    }
}
