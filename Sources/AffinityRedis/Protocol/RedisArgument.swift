import NIOCore

/// A binary-safe command or script argument, written from text, integers or bytes.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    /// The argument's bytes.
    public var bytes: ByteBuffer

    /// An argument from bytes.
    public init(_ bytes: ByteBuffer) { self.bytes = bytes }
    /// An argument from text (UTF-8).
    public init(_ text: String) { self.bytes = ByteBuffer(string: text) }
    /// An argument from an integer, in decimal.
    public init(_ value: Int) { self.bytes = ByteBuffer(string: String(value)) }
    /// An argument from a string literal.
    public init(stringLiteral value: String) { self.init(value) }
    /// An argument from an integer literal.
    public init(integerLiteral value: Int) { self.init(value) }
}
