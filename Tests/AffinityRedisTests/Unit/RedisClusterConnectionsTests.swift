import NIOCore
import NIOEmbedded
import Testing

@testable import AffinityRedis

/// The routing decision of a cluster client without I/O: which connection a slot's command takes, and the
/// fail-fast errors when there is none.
@Suite("Redis Cluster connections")
struct RedisClusterConnectionsTests {
    let first = RedisEndpoint(host: "127.0.0.1", port: 7000)
    let second = RedisEndpoint(host: "127.0.0.1", port: 7001)

    func connection(to endpoint: RedisEndpoint) -> RedisConnection {
        let channel = EmbeddedChannel()
        return RedisConnection(
            channel: channel, generation: 1, endpoint: endpoint,
            closed: channel.eventLoop.makeSucceededFuture(RedisError(code: .connection, message: "closed")))
    }

    func connections() throws -> RedisClusterConnections {
        var connections = RedisClusterConnections()
        connections.slotMap = try RedisClusterSlotMap(shards: [
            .init(master: first, slots: [0...8191], replicas: []),
            .init(master: second, slots: [8192...16383], replicas: []),
        ])
        return connections
    }

    @Test func beforeTheFirstMapEveryCommandFailsFast() {
        let error = #expect(throws: RedisError.self) {
            try RedisClusterConnections().connection(forSlot: 5, clusterDescription: "cluster via a:1").get()
        }
        #expect(error?.code == .connection)
        #expect(error?.message.contains("cluster via a:1") == true)
    }

    @Test func aSlotTakesTheConnectionToItsMaster() throws {
        var connections = try connections()
        connections.connections = [first: connection(to: first), second: connection(to: second)]
        #expect(try connections.connection(forSlot: 0, clusterDescription: "c").get().endpoint == first)
        #expect(try connections.connection(forSlot: 8192, clusterDescription: "c").get().endpoint == second)
        #expect(try connections.connection(forSlot: nil, clusterDescription: "c").get().endpoint == first)
    }

    @Test func aMasterWithoutConnectionFailsItsSlotsOnly() throws {
        var connections = try connections()
        connections.connections = [second: connection(to: second)]
        let error = #expect(throws: RedisError.self) {
            try connections.connection(forSlot: 100, clusterDescription: "c").get()
        }
        #expect(error?.code == .connection)
        #expect(error?.message == "not connected to 127.0.0.1:7000, the master of slot 100")
        #expect(try connections.connection(forSlot: 9000, clusterDescription: "c").get().endpoint == second)
        #expect(try connections.connection(forSlot: nil, clusterDescription: "c").get().endpoint == second)
    }

    @Test func aSlotWithoutMasterSaysSo() throws {
        var connections = RedisClusterConnections()
        connections.slotMap = try RedisClusterSlotMap(shards: [.init(master: first, slots: [0...10], replicas: [])])
        connections.connections = [first: connection(to: first)]
        let error = #expect(throws: RedisError.self) {
            try connections.connection(forSlot: 11, clusterDescription: "c").get()
        }
        #expect(error?.message == "no master of the redis cluster serves slot 11")
    }

    @Test func aWakeUpWithoutWaiterIsKeptForLater() {
        var connections = RedisClusterConnections()
        #expect(connections.takeWakeWaiter() == nil)
        #expect(connections.wakeRequested)
    }
}
