import AffinityBench
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// `affinity-bench`: the load generator and benchmark (docs/BENCHMARKS.md). Reads options, runs
/// `BenchRunner`, prints the table or JSON; exits 1 only when the benchmark itself failed.
@main
struct AffinityBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "affinity-bench",
        abstract: "Load generator and benchmark of the affinity service.",
        discussion: """
            Starts affinity-server replicas (found next to this executable, or in --bin-dir / AFFINITY_BIN_DIR) \
            and redis-server (from PATH) as separate processes, drives protocol v1 load from this process, and \
            reports outcomes/s, latency percentiles, Redis commands per outcome, p99 at half of the peak and server \
            memory per idle connection, with the medians of --runs runs. Exit status 1 means the benchmark failed \
            (an outcome lost or misdelivered, a process died); missed targets are reported, not errors.
            """)

    @Option(
        help: "Comma-separated phases: memory, single, cluster, redis-cluster, half-load, relay, idle, or all.")
    var phases: String = "all"
    @Option(help: "Independent runs (fresh processes each); medians are reported. Default 3 (1 with --quick).")
    var runs: Int?
    @Option(help: "Measurement window per phase (500ms, 10s, 1m). Default 10s (1s with --quick).")
    var duration: String?
    @Option(help: "Warm-up before each window. Default 2s (500ms with --quick).")
    var warmup: String?
    @Option(help: "Concurrent outcome life cycles in the closed loop. Default 64 (16 with --quick).")
    var concurrency: Int?
    @Option(help: "Client connections per replica. Default 4 (2 with --quick).")
    var clientsPerReplica: Int?
    @Option(help: "Worker connections per replica. Default 2 (1 with --quick).")
    var workersPerReplica: Int?
    @Option(help: "Approximate size of each outcome's variables in bytes. Default 128.")
    var payloadBytes: Int?
    @Option(help: "Idle client connections of the idle phase. Default 10000 (500 with --quick).")
    var idleConnections: Int?
    @Option(
        help: "The idle phase's replica: redis (cluster mode with Redis) or memory (the embedded store). Default redis."
    )
    var idleStore: String?
    @Option(help: "Directory holding affinity-server (default: $AFFINITY_BIN_DIR, else next to this executable).")
    var binDir: String?
    @Option(
        help:
            "--event-loop-threads of every replica, or 'default' for the replica's own default (the CPUs available). Default 1."
    )
    var replicaEventLoopThreads: String?
    @Option(help: "Event loop threads of the load generator itself (this process). Default 1.")
    var loadEventLoopThreads: Int?
    @Option(help: "Outcomes per second of the relay phase's fixed-rate run. Default 4000.")
    var relayRate: Double?
    @Option(
        help:
            "Pin every replica to this CPU (taskset -c); start the bench itself under taskset -c <another CPU>. Default: not pinned."
    )
    var replicaCpu: Int?
    @Flag(help: "A short smoke run: one run, 1 s windows, lower concurrency, 500 idle connections.")
    var quick = false
    @Flag(help: "Print the report as JSON on stdout (progress stays on stderr).")
    var json = false
    @Option(help: "Also write the JSON report to this file (the table still goes to stdout).")
    var jsonFile: String?
    @Flag(help: "No progress lines on stderr.")
    var silent = false

    func run() async throws {
        let configuration: BenchConfiguration
        do {
            configuration = try resolve()
            try configuration.validate()
        } catch {
            throw ValidationError(error.message)
        }
        // The load generator runs on one event loop by default, and its tasks on that loop too (as the
        // replicas' do): a life cycle's client and worker connections then never wake another thread, which
        // keeps the load's own CPU per outcome low (it shares the cores with what it measures).
        NIOSingletons.groupLoopCountSuggestion = configuration.loadEventLoopThreads
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let signalSources = Self.killChildrenOnSignals()
        defer { withExtendedLifetime(signalSources) {} }
        let silent = self.silent
        let runner = BenchRunner(configuration: configuration) { line in
            if !silent { FileHandle.standardError.write(Data("affinity-bench: \(line)\n".utf8)) }
        }
        let report: BenchReport
        do {
            report = try await runner.run()
        } catch {
            FileHandle.standardError.write(Data("affinity-bench: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(report) + Data("\n".utf8)
        if let jsonFile {
            do {
                try data.write(to: URL(fileURLWithPath: jsonFile))
            } catch {
                FileHandle.standardError.write(Data("affinity-bench: cannot write \(jsonFile): \(error)\n".utf8))
            }
        }
        if json {
            FileHandle.standardOutput.write(data)
        } else {
            FileHandle.standardOutput.write(Data(report.renderTable().utf8))
        }
        if !report.passed {
            FileHandle.standardError.write(Data("affinity-bench: FAILED: \(report.failure ?? "")\n".utf8))
            throw ExitCode(1)
        }
    }

    /// The configuration from `--quick` (or the defaults) and the options given.
    func resolve() throws(BenchError) -> BenchConfiguration {
        var configuration = quick ? BenchConfiguration.quick : BenchConfiguration()
        configuration.phases = try BenchConfiguration.parsePhases(phases)
        if let runs { configuration.runs = runs }
        if let duration { configuration.duration = try DurationText.parse(duration, option: "--duration") }
        if let warmup { configuration.warmup = try DurationText.parse(warmup, option: "--warmup") }
        if let concurrency { configuration.concurrency = concurrency }
        if let clientsPerReplica { configuration.clientsPerReplica = clientsPerReplica }
        if let workersPerReplica { configuration.workersPerReplica = workersPerReplica }
        if let payloadBytes { configuration.payloadBytes = payloadBytes }
        if let idleConnections { configuration.idleConnections = idleConnections }
        switch idleStore {
        case nil, "redis": configuration.idleLayout = .single
        case "memory": configuration.idleLayout = .memory
        case let other?: throw BenchError(.invalidArgument, "--idle-store must be memory or redis, not \(other)")
        }
        configuration.binDirectory = binDir
        if let loadEventLoopThreads { configuration.loadEventLoopThreads = loadEventLoopThreads }
        if let relayRate { configuration.relayRate = relayRate }
        configuration.replicaCPU = replicaCpu
        if let replicaEventLoopThreads {
            if replicaEventLoopThreads == "default" {
                configuration.replicaEventLoopThreads = nil
            } else if let threads = Int(replicaEventLoopThreads) {
                configuration.replicaEventLoopThreads = threads
            } else {
                throw BenchError(.invalidArgument, "--replica-event-loop-threads must be a number or default")
            }
        }
        return configuration
    }

    /// On SIGINT or SIGTERM: kill the replicas and redis-server this process started, then exit 130.
    private static func killChildrenOnSignals() -> [any DispatchSourceSignal] {
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                ChildProcess.killAllStarted()
                Glibc.exit(130)
            }
            source.resume()
            sources.append(source)
        }
        return sources
    }
}
