/// Which master of a Redis Cluster serves each of the 16384 hash slots, as `CLUSTER SHARDS` (Redis 7) reports
/// it, and what `MOVED` replies taught the client since.
struct RedisClusterSlotMap: Sendable, Equatable {
    /// One master with the slot ranges it serves and its replicas.
    struct Shard: Sendable, Equatable {
        /// The master's address.
        var master: RedisEndpoint
        /// The slot ranges it serves.
        var slots: [ClosedRange<Int>]
        /// Its replicas' addresses (for logs; the client sends nothing to replicas).
        var replicas: [RedisEndpoint]
    }

    /// The shards that serve slots, in the order the server listed them.
    private(set) var shards: [Shard]
    /// Every master that serves at least one slot, in ``shards`` order, then masters learnt from `MOVED`.
    private(set) var masters: [RedisEndpoint]
    /// Per slot, the index of its master in ``masters``, or ``unassigned``.
    private var owners: [UInt16]
    private static let unassigned = UInt16.max

    /// A map from shards; throws when two shards claim one slot or a range is out of bounds.
    init(shards: [Shard]) throws(RedisError) {
        self.shards = shards
        self.masters = []
        self.owners = Array(repeating: Self.unassigned, count: RedisClusterSlot.count)
        for shard in shards {
            let index: Int
            if let known = masters.firstIndex(of: shard.master) {
                index = known
            } else {
                index = masters.count
                masters.append(shard.master)
            }
            for range in shard.slots {
                guard range.lowerBound >= 0, range.upperBound < RedisClusterSlot.count else {
                    throw Self.malformed("slot range \(range) is outside 0...16383")
                }
                for slot in range {
                    if owners[slot] != Self.unassigned && Int(owners[slot]) != index {
                        throw Self.malformed(
                            "slot \(slot) is served by both \(masters[Int(owners[slot])]) and \(shard.master)")
                    }
                    owners[slot] = UInt16(index)
                }
            }
        }
    }

    /// The master serving `slot`, or `nil` when no master does.
    func master(forSlot slot: Int) -> RedisEndpoint? {
        guard (0..<RedisClusterSlot.count).contains(slot) else { return nil }
        let owner = owners[slot]
        return owner == Self.unassigned ? nil : masters[Int(owner)]
    }

    /// How many slots have a master.
    var assignedSlotCount: Int {
        owners.reduce(0) { $0 + ($1 == Self.unassigned ? 0 : 1) }
    }

    /// Records a `MOVED`: `slot` is served by `master` now (a master not in the map yet is added).
    mutating func assign(slot: Int, to master: RedisEndpoint) {
        guard (0..<RedisClusterSlot.count).contains(slot) else { return }
        if let index = masters.firstIndex(of: master) {
            owners[slot] = UInt16(index)
        } else if masters.count < Int(Self.unassigned) {
            owners[slot] = UInt16(masters.count)
            masters.append(master)
        }
    }

    /// Parses a `CLUSTER SHARDS` reply: an array of shards, each a flat map with `slots` (a flat array of
    /// start and end slots) and `nodes` (each a flat map with `ip`, `endpoint`, `port`, `tls-port`, `role`,
    /// `health`). Shards without slots (a failed master after its replica took over) are left out; the master
    /// is the node whose role is `master`. `useTLSPort` picks `tls-port` when a node announces one.
    /// `replyingHost` stands in for a node that does not know its address (endpoint `?`, empty ip). Throws a
    /// ``RedisError/Code/protocol`` error naming what is wrong with a malformed reply.
    static func parse(
        shardsReply reply: RedisReply, useTLSPort: Bool, replyingHost: String
    ) throws(RedisError) -> RedisClusterSlotMap {
        guard let shardReplies = reply.array else {
            throw malformed("CLUSTER SHARDS answered \(reply.kind) instead of an array")
        }
        var shards: [Shard] = []
        for (position, shardReply) in shardReplies.enumerated() {
            let fields = try map(shardReply, "shard \(position)")
            guard let slotWords = fields["slots"]?.array else { throw malformed("shard \(position) has no slots") }
            guard slotWords.count % 2 == 0 else {
                throw malformed("shard \(position) lists an odd number of slot bounds")
            }
            var slots: [ClosedRange<Int>] = []
            for pair in stride(from: 0, to: slotWords.count, by: 2) {
                guard let start = slotWords[pair].integerValue, let end = slotWords[pair + 1].integerValue,
                    start <= end
                else { throw malformed("shard \(position) has an invalid slot range") }
                slots.append(start...end)
            }
            guard !slots.isEmpty else { continue }
            guard let nodeReplies = fields["nodes"]?.array else { throw malformed("shard \(position) has no nodes") }
            var master: RedisEndpoint?
            var replicas: [RedisEndpoint] = []
            for (nodePosition, nodeReply) in nodeReplies.enumerated() {
                let node = try map(nodeReply, "node \(nodePosition) of shard \(position)")
                let endpoint = try Self.endpoint(
                    node, useTLSPort: useTLSPort, replyingHost: replyingHost,
                    "node \(nodePosition) of shard \(position)")
                if node["role"]?.string == "master" {
                    master = endpoint
                } else {
                    replicas.append(endpoint)
                }
            }
            guard let master else { throw malformed("shard \(position) serves slots but has no master") }
            shards.append(Shard(master: master, slots: slots, replicas: replicas))
        }
        return try RedisClusterSlotMap(shards: shards)
    }

    private static func endpoint(
        _ node: [String: RedisReply], useTLSPort: Bool, replyingHost: String, _ what: String
    ) throws(RedisError) -> RedisEndpoint {
        let portValue = (useTLSPort ? node["tls-port"]?.integerValue : nil) ?? node["port"]?.integerValue
        guard let port = portValue, (1...65535).contains(port) else {
            throw malformed("\(what) has no valid port")
        }
        var host = node["endpoint"]?.string ?? ""
        if host.isEmpty || host == "?" { host = node["ip"]?.string ?? "" }
        if host.isEmpty || host == "?" { host = replyingHost }
        return RedisEndpoint(host: host, port: port)
    }

    /// A flat `[name, value, name, value, ...]` array as a dictionary.
    private static func map(_ reply: RedisReply, _ what: String) throws(RedisError) -> [String: RedisReply] {
        guard let words = reply.array, words.count % 2 == 0 else {
            throw malformed("\(what) is not a list of names and values")
        }
        var fields: [String: RedisReply] = [:]
        for index in stride(from: 0, to: words.count, by: 2) {
            guard let name = words[index].string else { throw malformed("\(what) has a field name that is not text") }
            fields[name] = words[index + 1]
        }
        return fields
    }

    private static func malformed(_ reason: String) -> RedisError {
        RedisError(code: .protocol, message: "malformed CLUSTER SHARDS reply: \(reason)")
    }
}

extension RedisReply {
    /// An integer reply, or a bulk or simple string holding a decimal integer.
    fileprivate var integerValue: Int? {
        if let value = integer { return Int(exactly: value) }
        return string.flatMap { Int($0) }
    }

    /// The kind of reply, for error messages (never its content).
    var kind: String {
        switch self {
        case .simpleString: "a simple string"
        case .error: "an error"
        case .integer: "an integer"
        case .bulkString: "a bulk string"
        case .array: "an array"
        case .null: "null"
        }
    }
}
