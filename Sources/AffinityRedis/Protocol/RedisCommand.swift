import NIOCore

/// One Redis command: its name and arguments as binary-safe byte strings.
///
/// ```swift
/// let command: RedisCommand = ["SET", "greeting", "hello"]
/// let withBytes = RedisCommand("SET", arguments: ["k"], payload: someByteBuffer)
/// ```
public struct RedisCommand: Sendable, Hashable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Every word of the command, the name first.
    public var words: [ByteBuffer]

    /// Creates a command from its words, the name first.
    public init(words: [ByteBuffer]) {
        self.words = words
    }

    /// Creates a command from text words, the name first.
    public init(_ words: [String]) {
        self.words = words.map { ByteBuffer(string: $0) }
    }

    /// Creates a command from text words, the name first.
    public init(arrayLiteral elements: String...) {
        self.init(elements)
    }

    /// The command name (its first word), for logs and metrics; never the arguments, which may hold secrets.
    public var name: String {
        words.first.map { String(buffer: $0).uppercased() } ?? ""
    }

    /// The command name only: arguments may hold passwords or payloads.
    public var description: String { name }

    /// Appends a text argument.
    public mutating func append(_ argument: String) {
        words.append(ByteBuffer(string: argument))
    }

    /// Appends a binary argument.
    public mutating func append(_ argument: ByteBuffer) {
        words.append(argument)
    }
}
