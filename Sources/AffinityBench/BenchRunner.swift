import Foundation
import Synchronization

/// Runs the benchmark: for every run, starts each selected replica layout (and redis-server) as separate
/// processes, drives the load from this process, and collects the report.
///
/// ```swift
/// var configuration = BenchConfiguration.quick
/// configuration.binDirectory = ".build/release"
/// let report = try await BenchRunner(configuration: configuration).run()
/// print(report.renderTable())
/// ```
public struct BenchRunner: Sendable {
    /// What to run.
    public let configuration: BenchConfiguration
    /// Receives progress lines (the executable prints them on stderr).
    public let status: @Sendable (String) -> Void

    /// A runner for `configuration`.
    public init(configuration: BenchConfiguration, status: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = configuration
        self.status = status
    }

    /// Runs every phase of every run. Throws only when the benchmark cannot start at all (invalid options,
    /// missing executables); a failure during a run ends the runs and is reported in ``BenchReport/failure``.
    public func run() async throws -> BenchReport {
        try configuration.validate()
        let limit = FileDescriptorLimit.raise(to: configuration.requiredFileDescriptors + 1024)
        if limit < configuration.requiredFileDescriptors {
            throw BenchError(
                .invalidArgument,
                "the open-file limit is \(limit) but the phases need about \(configuration.requiredFileDescriptors); "
                    + "lower --idle-connections or raise the hard limit (ulimit -Hn)")
        }
        let binDirectory = ExecutableLocator.binDirectory(
            explicit: configuration.binDirectory, environment: ProcessInfo.processInfo.environment)
        let server = try ExecutableLocator.affinityServer(in: binDirectory)
        let needsRedis = configuration.phases.contains { $0 != .memory }
        var redisVersion = "redis not used"
        if needsRedis {
            _ = try ExecutableLocator.onPath("redis-cli", package: "redis-tools")
            redisVersion = try await Self.redisVersion()
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "affinity-bench-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw BenchError(.processFailed, "cannot create \(directory.path)", cause: ErrorText("\(error)"))
        }
        var certificates: PeerCertificates?
        if needsRedis { certificates = try PeerCertificates.make(in: directory) }

        var runs: [RunResult] = []
        var failure: String?
        for number in 1...configuration.runs {
            var result = RunResult(run: number)
            do {
                try await runOnce(&result, server: server, certificates: certificates, directory: directory)
                runs.append(result)
            } catch {
                runs.append(result)
                failure = "run \(number): \(error) (process logs kept in \(directory.path))"
                break
            }
        }
        ChildProcess.killAllStarted()
        let report = BenchReport(setup: setup(server: server, redisVersion: redisVersion), runs: runs, failure: failure)
        if report.passed { try? FileManager.default.removeItem(at: directory) }
        return report
    }

    private func runOnce(
        _ result: inout RunResult, server: String, certificates: PeerCertificates?, directory: URL
    ) async throws {
        let phases = configuration.phases
        for layout in [ReplicaSet.Layout.memory, .single, .cluster, .redisCluster] {
            let selected: Bool
            switch layout {
            case .memory: selected = phases.contains(.memory)
            case .single: selected = phases.contains(.single)
            case .cluster: selected = phases.contains(.cluster)
            case .redisCluster: selected = phases.contains(.redisCluster)
            }
            guard selected else { continue }
            status("run \(result.run): \(layout.rawValue): starting processes")
            let replicas = try await ReplicaSet.start(
                layout, serverPath: server, certificates: certificates, directory: directory,
                eventLoopThreads: configuration.replicaEventLoopThreads, cpu: configuration.replicaCPU)
            defer { replicas.stop() }
            let topology = try await LoadTopology.open(
                ports: replicas.replicas.map(\.port), clientsPerReplica: configuration.clientsPerReplica,
                workersPerReplica: configuration.workersPerReplica)
            let keys = KeySource()
            var counts = CorrectnessCounts()
            do {
                status("run \(result.run): \(layout.rawValue): closed loop, concurrency \(configuration.concurrency)")
                let closed = LoadProgress()
                let throughput = try await ClosedLoopLoad(
                    lifecycle: lifecycle(topology, keys, closed), concurrency: configuration.concurrency,
                    warmup: configuration.warmup, duration: configuration.duration
                ).run(replicas: replicas)
                counts.sent += closed.sent.load(ordering: .relaxed)
                counts.notDelivered += closed.notDelivered.load(ordering: .relaxed)
                result.throughput.append(throughput)
                status(
                    "run \(result.run): \(layout.rawValue): \(BenchReport.format(throughput.outcomesPerSecond)) outcomes/s, "
                        + "p99 \(BenchReport.format(throughput.latency.p99Ms)) ms")
                if phases.contains(.halfLoad) && layout != .memory {
                    let rate = throughput.outcomesPerSecond / 2
                    status("run \(result.run): \(layout.rawValue): open loop at \(BenchReport.format(rate)) outcomes/s")
                    let open = LoadProgress()
                    let halfLoad = try await OpenLoopLoad(
                        lifecycle: lifecycle(topology, keys, open), rate: rate, warmup: configuration.warmup,
                        duration: configuration.duration, slots: configuration.concurrency
                    ).run(replicas: replicas)
                    counts.sent += open.sent.load(ordering: .relaxed)
                    counts.notDelivered += open.notDelivered.load(ordering: .relaxed)
                    result.halfLoad.append(halfLoad)
                    status(
                        "run \(result.run): \(layout.rawValue): half load p99 \(BenchReport.format(halfLoad.latency.p99Ms)) ms"
                    )
                }
            } catch {
                // The run failed: keep what was observed (sent counts of an interrupted load included).
                result.correctness = result.correctness + counts + topology.clientCounts
                await topology.closeAll()
                throw error
            }
            // Every client has settled its outcomes: add what the connections observed.
            let observed = topology.clientCounts
            counts.received += observed.received
            counts.lost += observed.lost
            counts.wrongClient += observed.wrongClient
            counts.duplicates += observed.duplicates
            counts.corrupted += observed.corrupted
            counts.protocolErrors += observed.protocolErrors
            result.correctness = result.correctness + counts
            await topology.closeAll()
            try replicas.checkAlive()
        }
        if phases.contains(.relay) {
            for layout in [ReplicaSet.Layout.memory, .single] {
                try await runRelay(layout, &result, server: server, certificates: certificates, directory: directory)
            }
        }
        if phases.contains(.idle) {
            let store = configuration.idleLayout == .memory ? "embedded store" : "cluster mode with Redis"
            status("run \(result.run): idle: \(configuration.idleConnections) connections to one replica (\(store))")
            let replicas = try await ReplicaSet.start(
                configuration.idleLayout, serverPath: server, certificates: certificates, directory: directory,
                eventLoopThreads: configuration.replicaEventLoopThreads, cpu: configuration.replicaCPU)
            defer { replicas.stop() }
            let idle = try await IdleConnectionProbe(
                connections: configuration.idleConnections, parallelConnects: 64, settle: .seconds(1)
            ).run(replicas: replicas)
            result.idle = idle
            status("run \(result.run): idle: \(BenchReport.format(idle.perConnectionKiB)) KiB per connection")
        }
    }

    /// The `relay` phase on `layout` (one replica): `concurrency` keys subscribed first, then the closed loop
    /// and the fixed-rate run send outcome after outcome on them; the keys are unsubscribed at the end.
    private func runRelay(
        _ layout: ReplicaSet.Layout, _ result: inout RunResult, server: String, certificates: PeerCertificates?,
        directory: URL
    ) async throws {
        let name = BenchReport.relayPrefix(layout)
        status("run \(result.run): \(name): starting processes")
        let replicas = try await ReplicaSet.start(
            layout, serverPath: server, certificates: certificates, directory: directory,
            eventLoopThreads: configuration.replicaEventLoopThreads, cpu: configuration.replicaCPU)
        defer { replicas.stop() }
        let topology = try await LoadTopology.open(
            ports: replicas.replicas.map(\.port), clientsPerReplica: configuration.clientsPerReplica,
            workersPerReplica: configuration.workersPerReplica)
        let keys = KeySource()
        var counts = CorrectnessCounts()
        do {
            let subscriptions = try await RelaySubscriptions.subscribe(
                count: configuration.concurrency, topology: topology, keys: keys)
            status("run \(result.run): \(name): closed loop on \(configuration.concurrency) subscribed keys")
            let closed = LoadProgress()
            let throughput = try await ClosedLoopLoad(
                lifecycle: lifecycle(topology, keys, closed, relay: subscriptions),
                concurrency: configuration.concurrency, warmup: configuration.warmup, duration: configuration.duration
            ).run(replicas: replicas)
            counts.sent += closed.sent.load(ordering: .relaxed)
            counts.notDelivered += closed.notDelivered.load(ordering: .relaxed)
            result.relay.append(throughput)
            status(
                "run \(result.run): \(name): \(BenchReport.format(throughput.outcomesPerSecond)) outcomes/s, "
                    + "\(BenchReport.format(throughput.replicaCPUMicrosecondsPerOutcome ?? 0)) µs replica CPU each")
            status("run \(result.run): \(name): fixed rate \(BenchReport.format(configuration.relayRate)) outcomes/s")
            let open = LoadProgress()
            let fixed = try await OpenLoopLoad(
                lifecycle: lifecycle(topology, keys, open, relay: subscriptions), rate: configuration.relayRate,
                warmup: configuration.warmup, duration: configuration.duration, slots: configuration.concurrency
            ).run(replicas: replicas)
            counts.sent += open.sent.load(ordering: .relaxed)
            counts.notDelivered += open.notDelivered.load(ordering: .relaxed)
            result.relayFixedRate.append(fixed)
            status(
                "run \(result.run): \(name): fixed rate \(BenchReport.format(fixed.replicaCPUMicrosecondsPerOutcome ?? 0)) "
                    + "µs replica CPU each")
            try await subscriptions.unsubscribeAll()
        } catch {
            result.correctness = result.correctness + counts + topology.clientCounts
            await topology.closeAll()
            throw error
        }
        let observed = topology.clientCounts
        counts.received += observed.received
        counts.lost += observed.lost
        counts.wrongClient += observed.wrongClient
        counts.duplicates += observed.duplicates
        counts.corrupted += observed.corrupted
        counts.protocolErrors += observed.protocolErrors
        result.correctness = result.correctness + counts
        await topology.closeAll()
        try replicas.checkAlive()
    }

    private func lifecycle(
        _ topology: LoadTopology, _ keys: KeySource, _ progress: LoadProgress, relay: RelaySubscriptions? = nil
    ) -> OutcomeLifecycle {
        OutcomeLifecycle(
            topology: topology, keys: keys, progress: progress, payloadBytes: configuration.payloadBytes, relay: relay)
    }

    private func setup(server: String, redisVersion: String) -> BenchReport.Setup {
        func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        return BenchReport.Setup(
            phases: configuration.phases.map(\.rawValue), runs: configuration.runs,
            warmupSeconds: seconds(configuration.warmup), durationSeconds: seconds(configuration.duration),
            concurrency: configuration.concurrency, clientsPerReplica: configuration.clientsPerReplica,
            workersPerReplica: configuration.workersPerReplica, payloadBytes: configuration.payloadBytes,
            idleConnections: configuration.idleConnections, cpus: ProcessInfo.processInfo.activeProcessorCount,
            server: server, redisVersion: redisVersion, replicaEventLoopThreads: configuration.replicaEventLoopThreads,
            loadEventLoopThreads: configuration.loadEventLoopThreads)
    }

    private static func redisVersion() async throws -> String {
        let executable = try ExecutableLocator.onPath("redis-server", package: "redis-server")
        return try await Offload.run {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["--version"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}
