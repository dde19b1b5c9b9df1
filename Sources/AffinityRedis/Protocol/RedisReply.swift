import NIOCore

/// One reply from Redis, as decoded by hiredis's reply reader.
///
/// Bulk payloads stay bytes (``bulkString(_:)`` holds a `ByteBuffer`), so an outcome's JSON passes through
/// Redis byte-for-byte. hiredis 0.14 reports a null bulk string and a null array alike as ``null``.
public enum RedisReply: Sendable, Hashable {
    /// A simple string (`+OK`).
    case simpleString(String)
    /// An error reply (`-ERR ...`), with the server's text.
    case error(String)
    /// An integer (`:42`).
    case integer(Int64)
    /// A bulk string (`$n`), as bytes.
    case bulkString(ByteBuffer)
    /// An array (`*n`), possibly nested.
    case array([RedisReply])
    /// A null bulk string or null array.
    case null
}

extension RedisReply {
    /// The reply as text when it is a simple or bulk string (bulk bytes decoded as UTF-8), else `nil`.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let bytes): return String(buffer: bytes)
        default: return nil
        }
    }

    /// The reply as an integer when it is one, else `nil`.
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The elements when the reply is an array, else `nil`.
    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The bytes when the reply is a bulk string, else `nil`.
    public var bytes: ByteBuffer? {
        if case .bulkString(let bytes) = self { return bytes }
        return nil
    }
}
