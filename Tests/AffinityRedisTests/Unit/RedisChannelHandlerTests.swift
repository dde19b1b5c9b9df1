import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import AffinityRedis

@Suite("Redis channel handler on an embedded channel")
struct RedisChannelHandlerTests {
    struct Harness {
        let channel: EmbeddedChannel
        let ready: EventLoopPromise<Void>
        let closed: EventLoopPromise<RedisError>

        init(handshake: [RedisCommand] = [], maximumReplyBytes: Int = 1 << 20) throws {
            channel = EmbeddedChannel()
            ready = channel.eventLoop.makePromise()
            closed = channel.eventLoop.makePromise()
            try channel.pipeline.syncOperations.addHandler(
                RedisChannelHandler(
                    handshake: handshake, endpoint: "embedded", readyPromise: ready, closedPromise: closed,
                    handshakeTimeout: .seconds(1), deadlineCheckInterval: .milliseconds(10),
                    maximumReplyBytes: maximumReplyBytes, logger: Logger(label: "test")))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        }

        func send(_ command: RedisCommand, timeout: TimeAmount = .seconds(1)) -> EventLoopFuture<RedisReply> {
            let promise = channel.eventLoop.makePromise(of: RedisReply.self)
            channel.writeAndFlush(
                RedisRequest(command: command, deadline: channel.eventLoop.now + timeout, promise: promise),
                promise: nil)
            return promise.futureResult
        }

        func written() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        func feed(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }
    }

    @Test func runsTheHandshakeBeforeUserCommands() throws {
        let harness = try Harness(handshake: [["AUTH", "u", "p"], ["SELECT", "2"]])
        #expect(try harness.written() == "*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n")
        let reply = harness.send(["GET", "k"])
        #expect(try harness.written() == "", "held back until the handshake succeeds")
        try harness.feed("+OK\r\n+O")
        try harness.feed("K\r\n")
        try harness.ready.futureResult.wait()
        #expect(try harness.written() == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        try harness.feed("$1\r\nv\r\n")
        #expect(try reply.wait() == .bulkString(ByteBuffer(string: "v")))
        _ = try harness.channel.finish()
    }

    @Test func aRejectedPasswordFailsReadinessAndCloses() throws {
        let harness = try Harness(handshake: [["AUTH", "p"]])
        _ = try harness.written()
        let held = harness.send(["PING"])
        try harness.feed("-WRONGPASS invalid username-password pair\r\n")
        #expect(throws: RedisError.self) { try harness.ready.futureResult.wait() }
        #expect(throws: RedisError.self) { try held.wait() }
        #expect(!harness.channel.isActive)
        let reason = try harness.closed.futureResult.wait()
        #expect(reason.code == .server)
        #expect(reason.message.contains("WRONGPASS"))
    }

    @Test func pairsRepliesSplitAcrossReads() throws {
        let harness = try Harness()
        try harness.ready.futureResult.wait()
        let replies = (0..<3).map { harness.send(["INCR", "n\($0)"]) }
        _ = try harness.written()
        let wire = ":1\r\n*2\r\n$1\r\na\r\n:2\r\n-ERR nope\r\n"
        for byte in wire.utf8 {
            try harness.channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try replies[0].wait() == .integer(1))
        #expect(try replies[1].wait() == .array([.bulkString(ByteBuffer(string: "a")), .integer(2)]))
        #expect(try replies[2].wait() == .error("ERR nope"))
        _ = try harness.channel.finish()
    }

    @Test func aLateReplyRecyclesTheConnection() throws {
        let harness = try Harness()
        try harness.ready.futureResult.wait()
        let slow = harness.send(["BLPOP", "q", "0"], timeout: .milliseconds(100))
        let other = harness.send(["PING"], timeout: .seconds(10))
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        #expect(harness.channel.isActive)
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        let timeout = #expect(throws: RedisError.self) { try slow.wait() }
        #expect(timeout?.code == .timeout)
        let recycled = #expect(throws: RedisError.self) { try other.wait() }
        #expect(recycled?.code == .connection)
        #expect(!harness.channel.isActive)
        #expect(try harness.closed.futureResult.wait().code == .timeout)
    }

    @Test func garbageFromTheServerClosesWithAProtocolError() throws {
        let harness = try Harness()
        try harness.ready.futureResult.wait()
        let reply = harness.send(["PING"])
        try? harness.feed("!not resp\r\n")
        let error = #expect(throws: RedisError.self) { try reply.wait() }
        #expect(error?.code == .protocol)
        #expect(!harness.channel.isActive)
    }

    @Test func anOversizedReplyClosesWithAProtocolError() throws {
        let harness = try Harness(maximumReplyBytes: 1024)
        try harness.ready.futureResult.wait()
        let reply = harness.send(["GET", "big"])
        try? harness.feed("$100000\r\n" + String(repeating: "x", count: 4096))
        #expect((try? reply.wait()) == nil)
        #expect(!harness.channel.isActive)
    }

    @Test func aReplyNobodyAskedForClosesTheConnection() throws {
        let harness = try Harness()
        try harness.ready.futureResult.wait()
        try? harness.feed("+OK\r\n")
        #expect(!harness.channel.isActive)
        #expect(try harness.closed.futureResult.wait().code == .protocol)
    }

    @Test func gracefulCloseAnswersCommandsInFlightFirst() throws {
        let harness = try Harness()
        try harness.ready.futureResult.wait()
        let inFlight = harness.send(["PING"])
        harness.channel.triggerUserOutboundEvent(RedisGracefulClose(), promise: nil)
        #expect(harness.channel.isActive)
        let late = harness.send(["PING"])
        #expect(throws: RedisError.self) { try late.wait() }
        try harness.feed("+PONG\r\n")
        #expect(try inFlight.wait() == .simpleString("PONG"))
        #expect(!harness.channel.isActive)
    }
}
