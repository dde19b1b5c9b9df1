import NIOCore
import Testing

@testable import AffinityRedis

@Suite("Redis Cluster slots, keys and redirections")
struct RedisClusterSlotTests {
    /// What `CLUSTER KEYSLOT <key>` answered on redis-server 7.0.15.
    @Test(arguments: [
        ("123456789", 12739), ("", 0), ("a", 15495), ("b", 3300), ("foo", 12182), ("bar", 5061), ("hello", 866),
        ("{user1000}.following", 3443), ("123456", 8420), ("affinity:{2251799813685249}:route", 8396),
        ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061), ("{", 4092), ("}", 12090),
        ("{}", 15257), ("a{b", 13340), ("user:{42}:x", 8000), ("{42}", 8000), ("42", 8000),
    ])
    func matchesClusterKeyslot(key: String, slot: Int) {
        #expect(RedisClusterSlot.slot(forKey: key) == slot)
        #expect(RedisClusterSlot.slot(forKey: ByteBuffer(string: key)) == slot)
    }

    @Test func keysSharingAHashTagShareASlot() {
        let slots = ["route", "parked", "outcomes", "bytes", "acknowledged"].map {
            RedisClusterSlot.slot(forKey: "affinity:{2251799813685249}:\($0)")
        }
        #expect(Set(slots).count == 1)
        #expect(
            RedisClusterSlot.slot(forKey: "affinity:{1}:route") != RedisClusterSlot.slot(forKey: "affinity:{2}:route"))
    }

    @Test func routesCommandsByTheirFirstKey() {
        let key = ByteBuffer(string: "k")
        #expect((["GET", "k"] as RedisCommand).clusterKey == key)
        #expect((["ZADD", "k", "1", "m"] as RedisCommand).clusterKey == key)
        #expect((["EVALSHA", "abc", "2", "k", "other", "argument"] as RedisCommand).clusterKey == key)
        #expect((["EVAL", "return 1", "0", "argument"] as RedisCommand).clusterKey == nil)
        #expect((["OBJECT", "ENCODING", "k"] as RedisCommand).clusterKey == key)
        #expect((["evalsha", "abc", "x", "k"] as RedisCommand).clusterKey == nil, "numkeys must be a number")
        for command: RedisCommand in [["PING"], ["SCRIPT", "LOAD", "return 1"], ["WAIT", "1", "0"], ["INFO"]] {
            #expect(command.clusterKey == nil, "\(command.name) has no key")
        }
        #expect((["GET", "{42}x"] as RedisCommand).clusterSlot == 8000)
    }

    @Test func parsesMovedAndAsk() {
        #expect(
            RedisClusterRedirection(errorText: "MOVED 3999 127.0.0.1:6381", replyingHost: "h")
                == .moved(slot: 3999, endpoint: RedisEndpoint(host: "127.0.0.1", port: 6381)))
        #expect(
            RedisClusterRedirection(errorText: "ASK 16383 redis-2.internal:7000", replyingHost: "h")
                == .ask(slot: 16383, endpoint: RedisEndpoint(host: "redis-2.internal", port: 7000)))
        #expect(
            RedisClusterRedirection(errorText: "MOVED 0 :6380", replyingHost: "10.0.0.5")
                == .moved(slot: 0, endpoint: RedisEndpoint(host: "10.0.0.5", port: 6380)),
            "a node that does not know its address leaves the host out")
        #expect(
            RedisClusterRedirection(errorText: "MOVED 7 ::1:6379", replyingHost: "h")
                == .moved(slot: 7, endpoint: RedisEndpoint(host: "::1", port: 6379)))
    }

    @Test(arguments: [
        "MOVED", "MOVED 1", "MOVED x 127.0.0.1:1", "MOVED 16384 127.0.0.1:1", "MOVED -1 h:1", "ASK 1 h",
        "ASK 1 h:0", "ASK 1 h:70000", "MOVED 1 h:1 extra", "ERR unknown command", "CROSSSLOT Keys in request",
        "TRYAGAIN Multiple keys request during rehashing of slot",
    ])
    func refusesWhatIsNotARedirection(_ text: String) {
        #expect(RedisClusterRedirection(errorText: text, replyingHost: "h") == nil)
    }
}

@Suite("Redis Cluster slot map")
struct RedisClusterSlotMapTests {
    static func node(
        _ port: Int, role: String, ip: String = "127.0.0.1", endpoint: String? = nil, tlsPort: Int? = nil,
        health: String = "online"
    ) -> RedisReply {
        var fields: [RedisReply] = [
            .bulkString(ByteBuffer(string: "id")), .bulkString(ByteBuffer(string: "id-\(port)")),
            .bulkString(ByteBuffer(string: "port")), .integer(Int64(port)),
        ]
        if let tlsPort { fields += [.bulkString(ByteBuffer(string: "tls-port")), .integer(Int64(tlsPort))] }
        fields += [
            .bulkString(ByteBuffer(string: "ip")), .bulkString(ByteBuffer(string: ip)),
            .bulkString(ByteBuffer(string: "endpoint")), .bulkString(ByteBuffer(string: endpoint ?? ip)),
            .bulkString(ByteBuffer(string: "role")), .bulkString(ByteBuffer(string: role)),
            .bulkString(ByteBuffer(string: "replication-offset")), .integer(14),
            .bulkString(ByteBuffer(string: "health")), .bulkString(ByteBuffer(string: health)),
        ]
        return .array(fields)
    }

    static func shard(_ slots: [Int], _ nodes: [RedisReply]) -> RedisReply {
        .array([
            .bulkString(ByteBuffer(string: "slots")), .array(slots.map { .integer(Int64($0)) }),
            .bulkString(ByteBuffer(string: "nodes")), .array(nodes),
        ])
    }

    /// The shape redis-server 7.0.15 answered after its master on 17101 was killed and 17104 took over.
    static let afterFailover: RedisReply = .array([
        shard([5461, 10922], [node(17102, role: "master"), node(17105, role: "replica")]),
        shard([], [node(17101, role: "master", health: "fail")]),
        shard([0, 5460], [node(17104, role: "master")]),
        shard([10923, 16383], [node(17103, role: "master"), node(17106, role: "replica")]),
    ])

    func endpoint(_ port: Int) -> RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }

    @Test func parsesTheShardsOfARealCluster() throws {
        let map = try RedisClusterSlotMap.parse(shardsReply: Self.afterFailover, useTLSPort: false, replyingHost: "x")
        #expect(map.masters == [endpoint(17102), endpoint(17104), endpoint(17103)])
        #expect(map.assignedSlotCount == RedisClusterSlot.count)
        #expect(map.master(forSlot: 0) == endpoint(17104))
        #expect(map.master(forSlot: 5460) == endpoint(17104))
        #expect(map.master(forSlot: 5461) == endpoint(17102))
        #expect(map.master(forSlot: 16383) == endpoint(17103))
        #expect(map.master(forSlot: 16384) == nil)
        #expect(map.shards[0].replicas == [endpoint(17105)])
        #expect(!map.masters.contains(endpoint(17101)), "a failed master without slots is left out")
    }

    @Test func aMovedSlotChangesItsMaster() throws {
        var map = try RedisClusterSlotMap.parse(shardsReply: Self.afterFailover, useTLSPort: false, replyingHost: "x")
        map.assign(slot: 100, to: endpoint(17103))
        #expect(map.master(forSlot: 100) == endpoint(17103))
        #expect(map.master(forSlot: 101) == endpoint(17104))
        map.assign(slot: 101, to: endpoint(17200))
        #expect(map.master(forSlot: 101) == endpoint(17200))
        #expect(map.masters.last == endpoint(17200))
    }

    @Test func picksTheTLSPortAndTheAnnouncedEndpoint() throws {
        let reply: RedisReply = .array([
            Self.shard(
                [0, 100, 200, 16383], [Self.node(7000, role: "master", endpoint: "redis-0.internal", tlsPort: 7443)]),
            Self.shard([101, 199], [Self.node(7001, role: "master", ip: "", endpoint: "?")]),
        ])
        let secure = try RedisClusterSlotMap.parse(shardsReply: reply, useTLSPort: true, replyingHost: "10.1.1.1")
        #expect(secure.master(forSlot: 50) == RedisEndpoint(host: "redis-0.internal", port: 7443))
        #expect(secure.master(forSlot: 150) == RedisEndpoint(host: "10.1.1.1", port: 7001))
        #expect(secure.master(forSlot: 300) == RedisEndpoint(host: "redis-0.internal", port: 7443))
        let plain = try RedisClusterSlotMap.parse(shardsReply: reply, useTLSPort: false, replyingHost: "10.1.1.1")
        #expect(plain.master(forSlot: 50) == RedisEndpoint(host: "redis-0.internal", port: 7000))
    }

    @Test func aPartialMapLeavesSlotsWithoutMaster() throws {
        let map = try RedisClusterSlotMap.parse(
            shardsReply: .array([Self.shard([0, 99], [Self.node(7000, role: "master")])]), useTLSPort: false,
            replyingHost: "x")
        #expect(map.assignedSlotCount == 100)
        #expect(map.master(forSlot: 100) == nil)
    }

    @Test(arguments: [
        ("not an array", RedisReply.simpleString("OK"), "instead of an array"),
        ("odd fields", .array([.array([.bulkString(ByteBuffer(string: "slots"))])]), "names and values"),
        ("no slots", .array([.array([.bulkString(ByteBuffer(string: "nodes")), .array([])])]), "has no slots"),
        ("odd bounds", .array([shard([0, 5, 9], [node(1, role: "master")])]), "odd number"),
        ("reversed", .array([shard([9, 5], [node(1, role: "master")])]), "invalid slot range"),
        ("out of range", .array([shard([0, 16384], [node(1, role: "master")])]), "outside 0...16383"),
        ("no master", .array([shard([0, 16383], [node(1, role: "replica")])]), "has no master"),
        ("bad port", .array([shard([0, 16383], [node(0, role: "master")])]), "no valid port"),
        (
            "overlap",
            .array([shard([0, 10], [node(1, role: "master")]), shard([10, 20], [node(2, role: "master")])]),
            "slot 10 is served by both"
        ),
        ("nodes not a list", .array([shard([0, 1], [.integer(3)])]), "names and values"),
    ])
    func refusesAMalformedReply(_ label: String, reply: RedisReply, reason: String) {
        let error = #expect(throws: RedisError.self, "\(label)") {
            try RedisClusterSlotMap.parse(shardsReply: reply, useTLSPort: false, replyingHost: "x")
        }
        #expect(error?.code == .protocol)
        #expect(error?.message.contains("malformed CLUSTER SHARDS reply") == true)
        #expect(error?.message.contains(reason) == true, "\(label): \(error?.message ?? "")")
    }
}
