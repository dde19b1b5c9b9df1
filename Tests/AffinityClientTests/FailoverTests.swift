import AffinityClient
import AffinityProtocol
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failover against built `affinity-server` processes: kill -9 and restart, drain to a second replica.
@Suite(.serialized, .timeLimit(.minutes(3))) struct FailoverTests {
    @Test func sessionResubscribesAfterTheReplicaIsKilledAndRestarted() async throws {
        let first = try await ServerProcess.start(replicaID: "replica-a")
        defer { first.stop() }
        let port = first.port
        let session = AffinitySession(
            configuration: testConnection([first.url]), clientID: "fe-kill", logger: quietLogger)
        let instance = key(123_456_789)
        try await withRunning(session) {
            try await eventually("connected") { session.connectedReplica == "replica-a" }
            async let received = session.awaitOutcome(processInstanceKey: instance, timeout: .seconds(60))
            try await eventually("subscribed") { session.pendingState.waitingRequests == 1 }
            first.signal(SIGKILL)
            try await first.waitForExit()
            try await eventually("disconnect noticed") { session.connectedReplica == nil }
            first.stop()
            let second = try await ServerProcess.start(replicaID: "replica-a2", port: port)
            defer { second.stop() }
            try await eventually("reconnected", timeout: .seconds(20)) { session.connectedReplica == "replica-a2" }
            try await eventually("re-subscribed") { session.pendingState.confirmedKeys == 1 }
            let publisher = OutcomePublisher(configuration: testConnection([second.url]), logger: quietLogger)
            let status = try await withRunning(publisher) {
                try await eventually("publisher connected") { publisher.isConnected }
                return try await publisher.publish(
                    outcome("after-restart", instance, #"{"ok":true}"#), timeout: .seconds(20))
            }
            let got = try await received
            #expect(got.id == "after-restart")
            #expect(got.variablesJSON == #"{"ok":true}"#)
            // delivered live: the new replica knows the subscription the session re-sent
            #expect(status == .delivered)
        }
        #expect(session.pendingState.isIdle)
    }

    @Test func drainMovesTheSessionToTheSecondReplica() async throws {
        try await withServerProcess(replicaID: "replica-b1") { b1 in
            try await withServerProcess(replicaID: "replica-b2") { b2 in
                let session = AffinitySession(
                    configuration: testConnection([b1.url, b2.url]), clientID: "fe-drain", logger: quietLogger)
                let instance = key(987_654_321)
                try await withRunning(session) {
                    try await eventually("connected to the first URL") { session.connectedReplica == "replica-b1" }
                    async let received = session.awaitOutcome(processInstanceKey: instance, timeout: .seconds(60))
                    try await eventually("subscribed") { session.pendingState.confirmedKeys == 1 }
                    b1.signal(SIGTERM)
                    try await eventually("moved to the second replica", timeout: .seconds(10)) {
                        session.connectedReplica == "replica-b2"
                    }
                    try await eventually("re-subscribed") { session.pendingState.confirmedKeys == 1 }
                    try await b1.waitForExit()
                    let publisher = OutcomePublisher(configuration: testConnection([b2.url]), logger: quietLogger)
                    let status = try await withRunning(publisher) {
                        try await eventually("publisher connected") { publisher.isConnected }
                        return try await publisher.publish(
                            outcome("after-drain", instance, #"{"moved":1}"#), timeout: .seconds(20))
                    }
                    let got = try await received
                    #expect(got.id == "after-drain")
                    #expect(status == .delivered)
                }
            }
        }
    }

    @Test func publisherMovesToTheNextURLWhenItsReplicaDies() async throws {
        try await withServerProcess(replicaID: "replica-c1") { c1 in
            try await withServerProcess(replicaID: "replica-c2") { c2 in
                let publisher = OutcomePublisher(
                    configuration: testConnection([c1.url, c2.url]), workerID: "worker-failover", logger: quietLogger)
                try await withRunning(publisher) {
                    try await eventually("connected") { publisher.connectedReplica == "replica-c1" }
                    c1.signal(SIGKILL)
                    try await c1.waitForExit()
                    try await eventually("moved", timeout: .seconds(10)) { publisher.connectedReplica == "replica-c2" }
                    let status = try await publisher.publish(outcome("p1", key(55), "{}"), timeout: .seconds(10))
                    #expect(status == .parked)
                }
            }
        }
    }

    /// A worker's replica drains while 16 publishers keep 1600 outcomes going: the publisher finishes what
    /// it sent to the draining replica (the replica answers before it closes), new publishes wait for the
    /// next replica instead of failing, and not one publish fails.
    @Test func drainOfTheWorkersReplicaFailsNoPublish() async throws {
        try await withServerProcess(replicaID: "replica-d1") { d1 in
            try await withServerProcess(replicaID: "replica-d2") { d2 in
                let publisher = OutcomePublisher(
                    configuration: testConnection([d1.url, d2.url]), workerID: "worker-drain", logger: quietLogger)
                try await withRunning(publisher) {
                    try await eventually("connected") { publisher.connectedReplica == "replica-d1" }
                    let progress = DrainProgress()
                    let results = try await withThrowingTaskGroup(of: [String: String].self) { group in
                        for lane in 0..<16 {
                            group.addTask {
                                var results: [String: String] = [:]
                                for index in 0..<100 {
                                    let id = "drain-\(lane)-\(index)"
                                    do {
                                        let status = try await publisher.publish(
                                            outcome(id, key(Int64(70_000 + lane)), #"{"i":\#(index)}"#),
                                            timeout: .seconds(20))
                                        results[id] = status.rawValue
                                    } catch let error as AffinityClientError {
                                        results[id] = error.code.rawValue + ": " + error.message
                                    }
                                    if progress.answered.add(1, ordering: .relaxed).newValue == 300,
                                        !progress.drained.exchange(true, ordering: .relaxed)
                                    {
                                        d1.signal(SIGTERM)
                                    }
                                }
                                return results
                            }
                        }
                        return try await group.reduce(into: [String: String]()) { $0.merge($1) { a, _ in a } }
                    }
                    #expect(results.count == 1600)
                    let failures = results.filter { $0.value != DeliveryStatus.parked.rawValue }
                    #expect(failures.isEmpty, "\(failures.count) publishes failed: \(failures.prefix(5))")
                    try await d1.waitForExit(timeout: .seconds(30))
                    #expect(publisher.connectedReplica == "replica-d2")
                    #expect(publisher.pendingCount == 0)
                }
            }
        }
    }
}

/// Counts answers across the publishing tasks and triggers the drain once.
private final class DrainProgress: Sendable {
    let answered = Atomic<Int>(0)
    let drained = Atomic<Bool>(false)
}
