import AffinityProtocol
import Synchronization

/// The load's connections to a replica set: client and worker connections on every replica, and the rule
/// that pairs them. With three replicas the worker of outcome `n` of a slot sits on replica
/// `(client replica + n) mod 3`, so one third of the outcomes are delivered locally and two thirds are
/// forwarded to the client's replica.
final class LoadTopology: Sendable {
    struct Endpoint: Sendable {
        let connection: BenchConnection
        let replicaIndex: Int
    }

    let clients: [Endpoint]
    let workers: [[BenchConnection]]
    let replicaCount: Int

    private init(clients: [Endpoint], workers: [[BenchConnection]]) {
        self.clients = clients
        self.workers = workers
        self.replicaCount = workers.count
    }

    /// Opens `clientsPerReplica` client and `workersPerReplica` worker connections to every replica.
    static func open(ports: [Int], clientsPerReplica: Int, workersPerReplica: Int) async throws -> LoadTopology {
        var clients: [Endpoint] = []
        var workers: [[BenchConnection]] = []
        do {
            for (index, port) in ports.enumerated() {
                var replicaWorkers: [BenchConnection] = []
                for number in 0..<clientsPerReplica {
                    let connection = try await BenchConnection.connect(
                        port: port, role: .client, clientId: "bench-client-\(index)-\(number)")
                    clients.append(Endpoint(connection: connection, replicaIndex: index))
                }
                for number in 0..<workersPerReplica {
                    replicaWorkers.append(
                        try await BenchConnection.connect(
                            port: port, role: .worker, clientId: "bench-worker-\(index)-\(number)"))
                }
                workers.append(replicaWorkers)
            }
        } catch {
            for client in clients { await client.connection.close() }
            for connection in workers.joined() { await connection.close() }
            throw error
        }
        // Clients in round-robin order over the replicas, so consecutive slots use different replicas.
        let ordered = (0..<clientsPerReplica).flatMap { number in
            (0..<ports.count).map { replica in clients[replica * clientsPerReplica + number] }
        }
        return LoadTopology(clients: ordered, workers: workers)
    }

    /// The client and worker connections of outcome `sequence` of slot `slot`, and whether it is forwarded.
    func pair(slot: Int, sequence: Int) -> (client: BenchConnection, worker: BenchConnection, forwarded: Bool) {
        let client = clients[slot % clients.count]
        let workerReplica = (client.replicaIndex + sequence) % replicaCount
        let replicaWorkers = workers[workerReplica]
        let worker = replicaWorkers[(slot / clients.count + sequence) % replicaWorkers.count]
        return (client.connection, worker, workerReplica != client.replicaIndex)
    }

    /// The correctness counts of every client connection.
    var clientCounts: CorrectnessCounts {
        (clients.map(\.connection) + workers.joined()).reduce(CorrectnessCounts()) { $0 + $1.inbox.counts }
    }

    /// Closes every connection.
    func closeAll() async {
        for client in clients { await client.connection.close() }
        for connection in workers.joined() { await connection.close() }
    }
}

/// Unique process instance keys and outcome ids for one load.
final class KeySource: Sendable {
    private let next: Atomic<Int64>

    init(start: Int64 = 2_251_799_813_685_249) {
        next = Atomic(start)
    }

    /// The next key.
    func take() -> ProcessInstanceKey {
        let value = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return ProcessInstanceKey(value)!
    }
}
