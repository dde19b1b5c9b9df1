import AffinityProtocol

/// Server memory per idle connection: VmRSS of the replica before and after `connections` clients said
/// `hello` and subscribed to one key each, then stay idle.
///
/// Past ``connectionsPerSourceAddress`` connections, each further block connects from the next loopback
/// address (127.0.0.2, 127.0.0.3, ...): one address runs out of ephemeral ports towards one server port
/// at about 28,000 connections.
struct IdleConnectionProbe {
    /// Connections opened from one loopback source address.
    static let connectionsPerSourceAddress = 20_000

    let connections: Int
    let parallelConnects: Int
    let settle: Duration

    func run(replicas: ReplicaSet) async throws -> IdleResult {
        guard let replica = replicas.replicas.first else {
            throw BenchError(.processFailed, "no replica to measure")
        }
        try await Task.sleep(for: settle)
        let before = try ProcessMemory.residentKiB(pid: replica.process.pid)
        let keys = KeySource(start: 3_000_000_000_000_000)
        var opened: [BenchConnection] = []
        opened.reserveCapacity(connections)
        do {
            try await withThrowingTaskGroup(of: BenchConnection.self) { group in
                let port = replica.port
                let open: @Sendable (Int) async throws -> BenchConnection = { number in
                    let block = number / Self.connectionsPerSourceAddress
                    let connection = try await BenchConnection.connect(
                        port: port, role: .client, clientId: "idle-\(number)", keepsReceivedIDs: false,
                        sourceAddress: block == 0 ? nil : "127.0.0.\(1 + block)")
                    do {
                        try await connection.subscribe(keys.take())
                    } catch {
                        await connection.close()
                        throw error
                    }
                    return connection
                }
                var started = 0
                while started < min(parallelConnects, connections) {
                    let number = started
                    group.addTask { try await open(number) }
                    started += 1
                }
                while let connection = try await group.next() {
                    opened.append(connection)
                    if started < connections {
                        let number = started
                        group.addTask { try await open(number) }
                        started += 1
                    }
                }
            }
            try await Task.sleep(for: settle)
            try replicas.checkAlive()
            let after = try ProcessMemory.residentKiB(pid: replica.process.pid)
            await closeAll(opened)
            return IdleResult(connections: opened.count, rssBeforeKiB: before, rssAfterKiB: after)
        } catch {
            await closeAll(opened)
            throw error
        }
    }

    private func closeAll(_ connections: [BenchConnection]) async {
        await withDiscardingTaskGroup { group in
            for chunk in stride(from: 0, to: connections.count, by: 500) {
                let slice = connections[chunk..<min(chunk + 500, connections.count)]
                group.addTask {
                    for connection in slice { await connection.close() }
                }
            }
        }
    }
}
