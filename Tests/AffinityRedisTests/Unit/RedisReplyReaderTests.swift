import AffinityRedis
import NIOCore
import Testing

@Suite("hiredis reply reader")
struct RedisReplyReaderTests {
    private func read(_ text: String) throws -> [RedisReply] {
        let reader = RedisReplyReader()
        try reader.feed(ByteBuffer(string: text))
        return try reader.drain()
    }

    @Test func decodesEveryReplyType() throws {
        let replies = try read("+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n")
        #expect(
            replies == [
                .simpleString("OK"), .error("ERR wrong"), .integer(42), .integer(-7),
                .bulkString(ByteBuffer(string: "hello")), .bulkString(ByteBuffer()), .null, .null, .array([]),
            ])
    }

    @Test func decodesNestedArrays() throws {
        let replies = try read("*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n-ERR inner\r\n$-1\r\n")
        #expect(
            replies == [
                .array([
                    .integer(1), .array([.bulkString(ByteBuffer(string: "a")), .array([.error("ERR inner")])]), .null,
                ])
            ])
    }

    @Test func keepsBinaryBulkBytesExactly() throws {
        let payload: [UInt8] = [0, 13, 10, 255, 0x7b, 0x22, 0]
        var buffer = ByteBuffer(string: "$\(payload.count)\r\n")
        buffer.writeBytes(payload)
        buffer.writeString("\r\n")
        let reader = RedisReplyReader()
        try reader.feed(buffer)
        #expect(try reader.next() == .bulkString(ByteBuffer(bytes: payload)))
    }

    @Test func decodesALargeBulkStringFedInChunks() throws {
        let payload = [UInt8]((0..<(3 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var buffer = ByteBuffer(string: "$\(payload.count)\r\n")
        buffer.writeBytes(payload)
        buffer.writeString("\r\n:1\r\n")
        let reader = RedisReplyReader()
        var replies: [RedisReply] = []
        while buffer.readableBytes > 0 {
            let chunk = buffer.readSlice(length: min(65_536, buffer.readableBytes))!
            try reader.feed(chunk)
            replies += try reader.drain()
        }
        #expect(replies == [.bulkString(ByteBuffer(bytes: payload)), .integer(1)])
    }

    @Test func givesTheSameRepliesForEverySplitPoint() throws {
        let wire = "+OK\r\n*2\r\n$3\r\nfoo\r\n*2\r\n:5\r\n$-1\r\n-NOSCRIPT No matching script\r\n$4\r\nb\r\nr\r\n"
        let expected = try read(wire)
        #expect(expected.count == 4)
        let bytes = Array(wire.utf8)
        for first in 0...bytes.count {
            for second in first...bytes.count {
                let reader = RedisReplyReader()
                var replies: [RedisReply] = []
                for range in [0..<first, first..<second, second..<bytes.count] {
                    try reader.feed(ByteBuffer(bytes: bytes[range]))
                    replies += try reader.drain()
                }
                #expect(replies == expected, "split at \(first) and \(second)")
            }
        }
    }

    @Test func givesTheSameRepliesFedOneByteAtATime() throws {
        let wire = "*3\r\n$6\r\nfoobar\r\n:9\r\n*1\r\n+x\r\n"
        let reader = RedisReplyReader()
        var replies: [RedisReply] = []
        for byte in wire.utf8 {
            try reader.feed(ByteBuffer(bytes: [byte]))
            replies += try reader.drain()
        }
        #expect(
            replies == [.array([.bulkString(ByteBuffer(string: "foobar")), .integer(9), .array([.simpleString("x")])])])
    }

    @Test func rejectsInvalidProtocolAndStaysFailed() throws {
        let reader = RedisReplyReader()
        try reader.feed(ByteBuffer(string: "?what\r\n"))
        let error = #expect(throws: RedisError.self) { try reader.next() }
        #expect(error?.code == .protocol)
        #expect(throws: RedisError.self) { try reader.feed(ByteBuffer(string: "+OK\r\n")) }
    }

    @Test func rejectsAReplyLargerThanTheLimit() throws {
        let reader = RedisReplyReader(maximumBufferedBytes: 1024)
        let error = #expect(throws: RedisError.self) {
            try reader.feed(ByteBuffer(string: "$4096\r\n" + String(repeating: "x", count: 2048)))
        }
        #expect(error?.code == .protocol)
    }

    @Test func waitsForIncompleteReplies() throws {
        let reader = RedisReplyReader()
        try reader.feed(ByteBuffer(string: "*2\r\n:1\r\n"))
        #expect(try reader.next() == nil)
        try reader.feed(ByteBuffer(string: ":2\r\n"))
        #expect(try reader.next() == .array([.integer(1), .integer(2)]))
        #expect(try reader.next() == nil)
    }
}

@Suite("hiredis command formatter")
struct RedisCommandEncoderTests {
    @Test func formatsARESPArrayOfBulkStrings() throws {
        let bytes = try RedisCommandEncoder.encode(["SET", "key", "value"])
        #expect(String(buffer: bytes) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
    }

    @Test func formatsEmptyAndBinaryArguments() throws {
        var command: RedisCommand = ["ECHO"]
        command.append(ByteBuffer(bytes: [0, 13, 10, 0xff]))
        command.append("")
        let bytes = try RedisCommandEncoder.encode(command)
        var expected = ByteBuffer(string: "*3\r\n$4\r\nECHO\r\n$4\r\n")
        expected.writeBytes([0, 13, 10, 0xff])
        expected.writeString("\r\n$0\r\n\r\n")
        #expect(bytes == expected)
    }

    @Test func roundTripsThroughTheReader() throws {
        var command: RedisCommand = ["EVALSHA", "abc", "1", "affinity:{1}:route"]
        command.append(ByteBuffer(bytes: Array(repeating: 0x41, count: 100_000)))
        let reader = RedisReplyReader()
        try reader.feed(try RedisCommandEncoder.encode(command))
        #expect(try reader.next() == .array(command.words.map { .bulkString($0) }))
    }

    @Test func rejectsAnEmptyCommand() {
        let error = #expect(throws: RedisError.self) { try RedisCommandEncoder.encode(RedisCommand(words: [])) }
        #expect(error?.code == .protocol)
    }
}
