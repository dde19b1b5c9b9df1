import AffinityProtocol
import AffinityTestSupport
import Foundation
import Synchronization
import Testing

extension ClusterTests {
    /// Forwards that reach the owner of a client while it drains (issue #14).
    @Suite("drain-window forwards")
    struct DrainWindowForwardTests {
        static let firstKey: Int64 = 2_251_799_813_711_000
        static let keyCount = 16
        static let outcomeCount = 640
        /// The first outcomes go to every key in turn, the rest to the keys that are not held only.
        static let outcomesForEveryKey = 128
        /// Outcomes the client acks on r1 before it stops acking those of the held keys.
        static let ackedBeforeHold = 64
        /// Outcomes the worker keeps unanswered at most: more than the held keys can block, so that the other
        /// keys keep flowing while the client holds.
        static let window = 96
        static let drainTimeout: Duration = .seconds(10)

        /// Whether the client holds the acks of `key` on r1 (every other key).
        static func isHeld(_ key: ProcessInstanceKey) -> Bool { (key.value - firstKey) % 2 == 0 }

        /// ``outcomeCount`` outcomes `drain-<n>` with variables `{"i":n}`: the first ``outcomesForEveryKey`` for
        /// every key in turn, the rest for the keys that are not held.
        static func load() throws -> (keys: [ProcessInstanceKey], outcomes: [Outcome]) {
            let keys = (0..<Int64(keyCount)).compactMap { ProcessInstanceKey(firstKey + $0) }
            let flowing = keys.filter { !isHeld($0) }
            let outcomes = try (0..<outcomeCount).map { index in
                let key =
                    index < outcomesForEveryKey
                    ? keys[index % keys.count] : flowing[(index - outcomesForEveryKey) % flowing.count]
                return try Outcome(id: "drain-\(index)", key: key, variables: Array(#"{"i":\#(index)}"#.utf8))
            }
            return (keys, outcomes)
        }

        /// A client on r1 holds 16 keys; a worker on r2 sends 640 outcomes for them, 96 at a time, each forwarded
        /// to r1: the first 128 for every key, the rest for 8 of them. After 64 acks the client stops acking the
        /// outcomes of the other 8 keys (the held keys; it acks the rest until r1 closes it). r2 sends a key's
        /// next outcome only once the previous one is answered, so when the client holds one outcome of each held
        /// key, 8 forwards are open on r1 waiting for its acks (the ack timeout is 30 s), while the other keys keep
        /// flowing. Then r1 gets SIGTERM: it tells the client `drain` and closes it, and must answer the open
        /// forwards while it drains, while the worker goes on sending. r1's log shows the 8 held forwards and
        /// forwards of the flowing keys handled after its `draining` line, none of the held ones as `delivered`.
        /// The client never acks what it held on r1: it reconnects to r2 with the same clientId and subscribes
        /// again. Every outcome the worker saw answered `delivered` or `parked` reaches it there (by id, a
        /// duplicate counts once), the held ones included; the worker sees no error; r1 exits 0 within its drain
        /// timeout, having finished every delivery.
        @Test(.timeLimit(.minutes(2)))
        func forwardsToADrainingOwnerLoseNoAnsweredOutcome() async throws {
            try await withClusterEnvironment { cluster in
                let r1 = try await cluster.start(
                    id: "r1",
                    arguments: ["--ack-timeout", "30s", "--drain-timeout", "10s", "--log-level", "trace"])
                let r2 = try await cluster.start(id: "r2", arguments: ["--ack-timeout", "30s"])
                let (keys, outcomes) = try Self.load()
                let ledger = OutcomeLedger()
                let window = DrainWindow()
                let (subscribed, subscribedSignal) = AsyncStream.makeStream(of: Void.self)
                let (terminated, terminatedSignal) = AsyncStream.makeStream(of: Void.self)
                let ownerPort = try r1.port
                let survivorPort = try r2.port

                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await withClusterSocket(port: ownerPort) { client in
                            _ = try await client.hello(role: .client, clientId: "front")
                            try await subscribe(client, to: keys)
                            subscribedSignal.yield()
                            subscribedSignal.finish()
                            try await receiveThenHold(client, into: ledger, window: window) {
                                r1.signal(SIGTERM)
                                terminatedSignal.yield()
                                terminatedSignal.finish()
                            }
                        }
                        try await withClusterSocket(port: survivorPort) { client in
                            let replica = try await client.hello(role: .client, clientId: "front")
                            #expect(replica == "r2", "the client failed over to r2")
                            for key in keys { client.send(.subscribe(key: key)) }
                            await receiveAfterFailover(client, into: ledger, window: window)
                        }
                    }
                    group.addTask {
                        for await _ in subscribed { break }
                        let answers = try await withClusterSocket(port: survivorPort) { worker in
                            _ = try await worker.hello(role: .worker, clientId: "worker")
                            return try await deliver(
                                outcomes, through: worker, window: Self.window,
                                beforeEachSend: { _ in window.workerSends(ownerRunning: r1.isRunning) })
                        }
                        ledger.finish(with: answers)
                    }
                    group.addTask {
                        var signalled = false
                        for await _ in terminated {
                            signalled = true
                            break
                        }
                        guard signalled, !Task.isCancelled else { return }
                        let exit = await r1.waitForExit(timeout: Self.drainTimeout)
                        window.ownerExited(exit)
                    }
                    try await group.waitForAll()
                }

                let answers = try #require(ledger.answers)
                let received = ledger.received
                let held = window.held
                #expect(
                    window.sentAfterSignal > 0, "the worker kept sending after r1's SIGTERM: \(window.sentAfterSignal)")

                // the drain window: r1 answered the forwards it held while it drained
                let drainLog = try ownerLogSinceDraining(r1)
                let heldUnanswered = held.filter { drainLog.handled[$0] == nil }
                #expect(
                    heldUnanswered.isEmpty,
                    "r1 answered every forward open at its SIGTERM while draining; not: \(heldUnanswered)")
                let heldDelivered = held.filter { drainLog.handled[$0] == "delivered" }
                #expect(
                    heldDelivered.isEmpty,
                    "r1 answered `delivered` for outcomes its client never acked: \(heldDelivered)")

                let flowingHandled = drainLog.handled.keys.filter { !held.contains($0) }
                #expect(
                    !flowingHandled.isEmpty,
                    "forwards of the flowing keys reached r1 while it drained: \(statusCounts(drainLog.handled))")

                // the guarantee: nothing answered delivered or parked is lost, and the worker saw no error
                #expect(answers.count == outcomes.count)
                let errors = answers.filter { $0.value != "delivered" && $0.value != "parked" }
                #expect(errors.isEmpty, "a drain answers the worker without errors: \(errors.prefix(5))")
                let lost = ledger.acknowledgedIDs.filter { received[$0] == nil }.sorted()
                #expect(
                    lost.isEmpty,
                    "answered delivered or parked, never received (\(lost.count)): \(lost.prefix(10))")
                let heldLost = held.filter { received[$0] == nil }
                #expect(heldLost.isEmpty, "the outcomes held on r1 reached the client on r2: \(heldLost)")
                let expectedKeys = Dictionary(uniqueKeysWithValues: outcomes.map { ($0.id, $0.key) })
                let wrongKey = received.filter { expectedKeys[$0.key] != $0.value }
                #expect(wrongKey.isEmpty, "outcomes for a wrong key or never sent: \(wrongKey.prefix(5))")

                let exit = try #require(window.ownerExit, "r1 was sent SIGTERM")
                #expect(
                    exit.status == 0,
                    "r1 exits 0 within its drain timeout of \(Self.drainTimeout): \(String(describing: exit.status))")
                #expect(
                    drainLog.drainedWithoutDeliveries,
                    "r1 finished every delivery before it stopped:\n\(r1.log.suffix(4000))")
                print(
                    "drain window: r1 answered \(drainLog.handled.count) forwards after `draining` (\(held.count)"
                        + " held; \(statusCounts(drainLog.handled))), the worker sent \(window.sentAfterSignal)"
                        + " outcomes after SIGTERM, \(window.sentWhileOwnerRan) of them while r1 still ran; r1 exited"
                        + " after \(exit.after), \(window.duplicates) duplicates dropped by id")
            }
        }
    }
}

/// What the client and the worker saw around the owner's SIGTERM.
private final class DrainWindow: Sendable {
    private struct State {
        var held: [String] = []
        var signalled: ContinuousClock.Instant?
        var sentAfterSignal = 0
        var sentWhileOwnerRan = 0
        var duplicates = 0
        var ownerExit: (status: Int32?, after: Duration)?
    }

    private let state = Mutex(State())

    /// The ids of the held keys' outcomes the client received on the owner and never acked.
    var held: [String] { state.withLock { $0.held } }
    /// Outcomes the worker sent after the owner was sent SIGTERM.
    var sentAfterSignal: Int { state.withLock { $0.sentAfterSignal } }
    /// Outcomes sent after the SIGTERM while the owner's process still ran.
    var sentWhileOwnerRan: Int { state.withLock { $0.sentWhileOwnerRan } }
    /// Outcomes the client received again after failover (dropped by id).
    var duplicates: Int { state.withLock { $0.duplicates } }

    /// The owner's exit status (nil: still running at its drain timeout) and when it was seen, from the SIGTERM.
    var ownerExit: (status: Int32?, after: Duration)? { state.withLock { $0.ownerExit } }

    func ownerExited(_ status: Int32?) {
        state.withLock { state in
            state.ownerExit = (status, state.signalled.map { .now - $0 } ?? .zero)
        }
    }

    /// Records a held outcome; returns how many are held now.
    func hold(_ id: String) -> Int {
        state.withLock { state in
            state.held.append(id)
            return state.held.count
        }
    }

    func markSignalled() {
        state.withLock { $0.signalled = .now }
    }

    func workerSends(ownerRunning: Bool) {
        state.withLock { state in
            guard state.signalled != nil else { return }
            state.sentAfterSignal += 1
            if ownerRunning { state.sentWhileOwnerRan += 1 }
        }
    }

    func duplicateReceived() {
        state.withLock { $0.duplicates += 1 }
    }
}

/// On the owner: acks every outcome, except those of the held keys once it acked
/// ``DrainWindowForwardTests/ackedBeforeHold``; once it holds one outcome of every held key, calls `signalOwner`
/// (SIGTERM) and reads (and acks the other keys' outcomes) until the owner closes the connection.
private func receiveThenHold(
    _ client: ClusterSocket, into ledger: OutcomeLedger, window: DrainWindow, signalOwner: () -> Void
) async throws {
    typealias Scenario = ClusterTests.DrainWindowForwardTests
    var acked = 0
    var drainSeen = false
    while true {
        let message: AffinityMessage
        do {
            // the next outcome comes as soon as the worker's previous one of its key was answered
            message = try await client.next(timeout: .seconds(20))
        } catch {
            guard client.isClosed else {
                throw FixtureError("r1 sent nothing for 20 s (\(window.held.count) outcomes held): \(error)")
            }
            break
        }
        switch message {
        case .outcome(let outcome) where acked >= Scenario.ackedBeforeHold && Scenario.isHeld(outcome.key):
            if window.hold(outcome.id) == Scenario.keyCount / 2 {
                window.markSignalled()
                signalOwner()
            }
        case .outcome(let outcome):
            client.send(.ack(id: outcome.id))
            ledger.record(outcome)
            acked += 1
        case .drain:
            drainSeen = true
        case let other:
            throw FixtureError("expected outcomes and drain on r1, got \(other)")
        }
    }
    #expect(drainSeen, "r1 told the client to drain before closing it")
}

/// On the replica the client failed over to: acks and records every outcome until every outcome the worker saw
/// answered `delivered` or `parked` arrived, or 20 s after the worker finished (what is missing then is lost).
private func receiveAfterFailover(_ client: ClusterSocket, into ledger: OutcomeLedger, window: DrainWindow) async {
    var deadline = ContinuousClock.now + .seconds(90)
    var workerFinished = false
    while !ledger.everyAcknowledgedOutcomeReceived && ContinuousClock.now < deadline {
        if !workerFinished && ledger.answers != nil {
            workerFinished = true
            deadline = min(deadline, .now + .seconds(20))
        }
        guard let message = try? await client.next(timeout: .seconds(1)) else {
            if client.isClosed { return }
            continue
        }
        if case .outcome(let outcome) = message {
            client.send(.ack(id: outcome.id))
            if ledger.received[outcome.id] != nil { window.duplicateReceived() }
            ledger.record(outcome)
        }
    }
}

/// What the owner logged from its `draining` line on: the forwards it answered (outcome id -> peer status), and
/// whether its `drained` line reports no delivery left.
private struct OwnerDrainLog {
    var handled: [String: String] = [:]
    var drainedWithoutDeliveries = false
}

/// Reads the owner's log (text format, trace level) from its `draining` line on.
private func ownerLogSinceDraining(_ owner: ReplicaProcess) throws -> OwnerDrainLog {
    let lines = owner.log.split(separator: "\n")
    guard let start = lines.firstIndex(where: { $0.hasSuffix("] draining") }) else {
        throw FixtureError("r1 logged no `draining` line:\n\(owner.log.suffix(4000))")
    }
    var result = OwnerDrainLog()
    for line in lines[start...] {
        if line.hasSuffix("] peer delivery handled"), let id = metadata("affinity.outcome", in: line),
            let status = metadata("affinity.peer.status", in: line)
        {
            result.handled[id] = status
        } else if line.hasSuffix("] drained") {
            result.drainedWithoutDeliveries = metadata("affinity.deliveries", in: line) == "0"
        }
    }
    return result
}

/// "parked: 3, not_owner: 1" for a map of outcome id -> status.
private func statusCounts(_ statuses: [String: String]) -> String {
    Dictionary(grouping: statuses.values, by: { $0 }).map { "\($0.key): \($0.value.count)" }.sorted()
        .joined(separator: ", ")
}

/// The value of `key=value` in a text log line.
private func metadata(_ key: String, in line: Substring) -> String? {
    line.split(separator: " ").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
}
