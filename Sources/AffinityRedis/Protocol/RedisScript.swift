/// A Lua script run with `EVALSHA`.
///
/// The client loads it with `SCRIPT LOAD` on first use (Redis returns the SHA-1, so no hashing is needed
/// here), caches the SHA-1, and when Redis answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`) loads it
/// again and retries once.
public struct RedisScript: Sendable, Hashable {
    /// A short name for logs and errors.
    public var name: String
    /// The Lua source.
    public var source: String

    /// Creates a script.
    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }
}

/// One invocation of a ``RedisScript``: its keys and arguments.
public struct RedisScriptCall: Sendable, Hashable {
    /// `KEYS` of the script (all in one hash slot for Redis Cluster).
    public var keys: [String]
    /// `ARGV` of the script, binary-safe.
    public var arguments: [RedisArgument]

    /// Creates a call.
    public init(keys: [String], arguments: [RedisArgument]) {
        self.keys = keys
        self.arguments = arguments
    }
}
