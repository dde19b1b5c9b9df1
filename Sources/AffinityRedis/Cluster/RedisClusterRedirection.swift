/// A Redis Cluster redirection error reply: `MOVED <slot> <host>:<port>` (the slot lives on another master
/// now: update the slot map and send it there) or `ASK <slot> <host>:<port>` (the slot is being migrated and
/// this key is already on the target: send `ASKING` and then the command to the target, once).
enum RedisClusterRedirection: Sendable, Hashable {
    /// The slot moved for good to `endpoint`.
    case moved(slot: Int, endpoint: RedisEndpoint)
    /// Ask `endpoint` for this one command (`ASKING` first).
    case ask(slot: Int, endpoint: RedisEndpoint)

    /// Parses the server text of an error reply; `nil` when it is not a well-formed `MOVED` or `ASK`. A
    /// missing host (`MOVED 3999 :6380`, from a node that does not know its own address) means the host of the
    /// node that answered, `replyingHost`.
    init?(errorText text: String, replyingHost: String) {
        let words = text.split(separator: " ")
        guard words.count == 3, let slot = Int(words[1]), (0..<RedisClusterSlot.count).contains(slot),
            let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(words[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = replyingHost }
        let endpoint = RedisEndpoint(host: host, port: port)
        switch words[0] {
        case "MOVED": self = .moved(slot: slot, endpoint: endpoint)
        case "ASK": self = .ask(slot: slot, endpoint: endpoint)
        default: return nil
        }
    }

    /// The node the reply names.
    var endpoint: RedisEndpoint {
        switch self {
        case .moved(_, let endpoint), .ask(_, let endpoint): endpoint
        }
    }
}
