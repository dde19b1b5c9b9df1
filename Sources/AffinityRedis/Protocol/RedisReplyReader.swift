import CHiredis
import NIOCore

/// Turns the bytes of a Redis connection into ``RedisReply`` values with hiredis's reply reader.
///
/// Feed it whatever the socket delivered (any split, even one byte at a time) and take the complete replies.
/// After a protocol error the reader is unusable and the connection must be closed. Not thread-safe: one
/// reader belongs to one connection and is used on its event loop.
public final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let maximumBufferedBytes: Int
    private var failure: RedisError?

    /// Creates a reader. `maximumBufferedBytes` bounds the bytes of one incomplete reply kept in memory
    /// (Redis's own `proto-max-bulk-len` default is 512 MiB).
    public init(maximumBufferedBytes: Int = 512 * 1024 * 1024) {
        guard let reader = redisReaderCreate() else {
            // redisReaderCreate fails only when malloc fails.
            preconditionFailure("hiredis could not allocate a reply reader")
        }
        self.reader = reader
        self.maximumBufferedBytes = maximumBufferedBytes
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes read from the connection to the reader.
    public func feed(_ bytes: ByteBuffer) throws(RedisError) {
        if let failure { throw failure }
        let status = bytes.withUnsafeReadableBytes { raw -> Int32 in
            guard let base = raw.baseAddress, raw.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), raw.count)
        }
        if status != REDIS_OK {
            throw fail("hiredis could not buffer the input: \(readerErrorText())")
        }
        if chiredis_reader_buffered_bytes(reader) > maximumBufferedBytes {
            throw fail("a reply exceeds \(maximumBufferedBytes) bytes")
        }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    public func next() throws(RedisError) -> RedisReply? {
        if let failure { throw failure }
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw fail("invalid RESP from the server: \(readerErrorText())")
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Every complete reply currently buffered.
    public func drain() throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        while let reply = try next() {
            replies.append(reply)
        }
        return replies
    }

    private func fail(_ message: String) -> RedisError {
        let error = RedisError(code: .protocol, message: message)
        failure = error
        return error
    }

    private func readerErrorText() -> String {
        String(cString: chiredis_reader_error(reader))
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(value.str, value.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(buffer: bytes(value.str, value.len)))
        case REDIS_REPLY_ERROR:
            return .error(String(buffer: bytes(value.str, value.len)))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element[index] {
                    elements.append(convert(element))
                } else {
                    elements.append(.null)
                }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> ByteBuffer {
        guard let pointer, count > 0 else { return ByteBuffer() }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
