import NIOCore

extension RedisCommand {
    /// The key a Redis Cluster client routes this command by: for `EVAL`/`EVALSHA`/`FCALL` (and their `_RO`
    /// forms) the first of its `numkeys` keys, for `OBJECT`/`MEMORY`/`XINFO` the word after the subcommand,
    /// `nil` for commands without keys (`PING`, `INFO`, `SCRIPT`, `WAIT`, `CLUSTER`, ...), and the first
    /// argument otherwise. Every key of one command must share a slot (Redis answers `CROSSSLOT` otherwise);
    /// a command this rule routes to the wrong master is answered `MOVED` and the client follows.
    var clusterKey: ByteBuffer? {
        guard words.count > 1 else { return nil }
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard words.count > 3, let count = Int(String(buffer: words[2])), count > 0 else { return nil }
            return words[3]
        case "OBJECT", "MEMORY", "XINFO":
            return words.count > 2 ? words[2] : nil
        case let name where Self.keylessCommands.contains(name):
            return nil
        default:
            return words[1]
        }
    }

    /// The slot of ``clusterKey``, or `nil` for a command without keys.
    var clusterSlot: Int? {
        clusterKey.map { RedisClusterSlot.slot(forKey: $0) }
    }

    private static let keylessCommands: Set<String> = [
        "ACL", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DBSIZE", "DEBUG",
        "ECHO", "FLUSHALL", "FLUSHDB", "FUNCTION", "HELLO", "INFO", "LASTSAVE", "LATENCY", "PING", "PUBLISH",
        "PUBSUB", "RANDOMKEY", "READONLY", "READWRITE", "ROLE", "SAVE", "SCAN", "SCRIPT", "SELECT", "SLOWLOG",
        "TIME", "WAIT",
    ]
}
