import Testing

@testable import AffinityBench

@Suite("Configuration")
struct ConfigurationTests {
    @Test("phases parse in a fixed order; unknown names are refused")
    func phases() throws {
        #expect(try BenchConfiguration.parsePhases("idle,cluster") == [.cluster, .idle])
        #expect(try BenchConfiguration.parsePhases("all") == BenchPhase.allCases)
        #expect(try BenchConfiguration.parsePhases(" single , half-load ") == [.single, .halfLoad])
        #expect(throws: BenchError.self) { try BenchConfiguration.parsePhases("clusters") }
        #expect(throws: BenchError.self) { try BenchConfiguration.parsePhases(",") }
    }

    @Test("durations: ms, s, m, plain seconds; garbage refused")
    func durations() throws {
        #expect(try DurationText.parse("500ms", option: "--d") == .milliseconds(500))
        #expect(try DurationText.parse("10s", option: "--d") == .seconds(10))
        #expect(try DurationText.parse("2m", option: "--d") == .seconds(120))
        #expect(try DurationText.parse("1.5", option: "--d") == .milliseconds(1500))
        #expect(throws: BenchError.self) { try DurationText.parse("ten", option: "--d") }
        #expect(throws: BenchError.self) { try DurationText.parse("-1s", option: "--d") }
    }

    @Test("defaults and --quick validate")
    func defaultsValidate() throws {
        try BenchConfiguration().validate()
        try BenchConfiguration.quick.validate()
        #expect(BenchConfiguration().idleConnections == 10_000)
        #expect(BenchConfiguration.quick.runs == 1)
        #expect(BenchConfiguration().replicaEventLoopThreads == 1)
        #expect(BenchConfiguration().loadEventLoopThreads == 1)
        var serverDefault = BenchConfiguration()
        serverDefault.replicaEventLoopThreads = nil
        try serverDefault.validate()
    }

    @Test("invalid values are refused with the option's name")
    func invalidValues() {
        func refused(_ change: (inout BenchConfiguration) -> Void, mentioning text: String) {
            var configuration = BenchConfiguration()
            change(&configuration)
            do {
                try configuration.validate()
                Issue.record("accepted an invalid configuration (\(text))")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(text), "\(error.message)")
            }
        }
        refused({ $0.runs = 0 }, mentioning: "--runs")
        refused({ $0.duration = .milliseconds(10) }, mentioning: "--duration")
        refused({ $0.concurrency = 0 }, mentioning: "--concurrency")
        refused(
            {
                $0.concurrency = 5000; $0.clientsPerReplica = 1
            }, mentioning: "--clients-per-replica")
        refused({ $0.payloadBytes = 10 }, mentioning: "--payload-bytes")
        refused({ $0.idleConnections = 0 }, mentioning: "--idle-connections")
        refused({ $0.phases = [.halfLoad, .idle] }, mentioning: "half-load")
        refused({ $0.phases = [] }, mentioning: "no phase")
        refused({ $0.replicaEventLoopThreads = 0 }, mentioning: "--replica-event-loop-threads")
        refused({ $0.loadEventLoopThreads = 0 }, mentioning: "--load-event-loop-threads")
        refused({ $0.relayRate = 0 }, mentioning: "--relay-rate")
        refused({ $0.replicaCPU = -1 }, mentioning: "--replica-cpu")
    }
}
