import AffinityClient
import AffinityProtocol
import AffinityServer
import Foundation
import Testing

/// The session against a real replica on loopback.
@Suite(.timeLimit(.minutes(2))) struct SessionTests {
    struct Order: Decodable, Equatable {
        let orderId: String
        let total: Double
    }

    @Test func subscribeReceiveAckRoundTrip() async throws {
        try await withServer { url in
            try await withClients(session: [url]) { session, publisher in
                let instance = key(2_251_799_813_685_249)
                async let received = session.awaitOutcome(processInstanceKey: instance, timeout: .seconds(10))
                try await eventually("subscribed") { session.pendingState.confirmedKeys == 1 }
                let variables = #"{"orderId":"A-1","total":12.5,"nested":{"x":[1,2]}}"#
                let status = try await publisher.publish(outcome("job-1", instance, variables), timeout: .seconds(10))
                let got = try await received
                // delivered means the session acked it after handing it over
                #expect(status == .delivered)
                #expect(got.id == "job-1")
                #expect(got.processInstanceKey == instance)
                #expect(got.variablesJSON == variables)
                #expect(try got.decode(Order.self) == Order(orderId: "A-1", total: 12.5))
                try await eventually("idle") { session.pendingState.isIdle }
            }
        }
    }

    @Test func outcomeParkedBeforeTheSubscribeIsReceived() async throws {
        try await withServer { url in
            try await withClients(session: [url]) { session, publisher in
                let instance = key(77)
                let status = try await publisher.publish(
                    outcome("early", instance, #"{"fast":true}"#), timeout: .seconds(5))
                #expect(status == .parked)
                let got = try await session.awaitOutcome(processInstanceKey: instance, timeout: .seconds(5))
                #expect(got.id == "early")
                #expect(got.variablesJSON == #"{"fast":true}"#)
            }
        }
    }

    @Test func severalOutcomesOfOneInstanceArriveInOrder() async throws {
        try await withServer { url in
            try await withClients(session: [url]) { session, publisher in
                let instance = key(501)
                // two parked before the iteration starts, three more while it runs
                for index in 0..<2 {
                    let status = try await publisher.publish(
                        outcome("m\(index)", instance, #"{"n":\#(index)}"#), timeout: .seconds(5))
                    #expect(status == .parked)
                }
                let received = try await withThrowingTaskGroup(of: [String].self) { group in
                    group.addTask {
                        var ids: [String] = []
                        for try await outcome in session.outcomes(processInstanceKey: instance, timeout: .seconds(10)) {
                            ids.append(outcome.id)
                            if ids.count == 5 { break }
                        }
                        return ids
                    }
                    group.addTask {
                        try await eventually("subscribed") { session.pendingState.subscribers == 1 }
                        for index in 2..<5 {
                            _ = try await publisher.publish(
                                outcome("m\(index)", instance, #"{"n":\#(index)}"#), timeout: .seconds(10))
                        }
                        return []
                    }
                    var ids: [String] = []
                    for try await result in group where !result.isEmpty { ids = result }
                    return ids
                }
                #expect(received == ["m0", "m1", "m2", "m3", "m4"])
                try await eventually("idle after the iteration ended") { session.pendingState.isIdle }
            }
        }
    }

    @Test func timeoutCarriesTheKeyAndLeavesNoPendingState() async throws {
        try await withServer { url in
            try await withClients(session: [url]) { session, _ in
                let instance = key(4242)
                let started = ContinuousClock.now
                do {
                    _ = try await session.awaitOutcome(processInstanceKey: instance, timeout: .milliseconds(200))
                    Issue.record("expected a timeout")
                } catch let error as AffinityClientError {
                    #expect(error.code == .timeout)
                    #expect(error.processInstanceKey == instance)
                }
                #expect(ContinuousClock.now - started < .seconds(3))
                #expect(session.pendingState.isIdle)
            }
        }
    }

    @Test func manyTimeoutsAndCancellationsLeaveNothingBehind() async throws {
        try await withServer { url in
            try await withClients(session: [url]) { session, _ in
                let timeouts = await withTaskGroup(of: Bool.self) { group in
                    for index in 1...300 {
                        group.addTask {
                            do {
                                _ = try await session.awaitOutcome(
                                    processInstanceKey: key(Int64(index % 50 + 1)),
                                    timeout: .milliseconds(Int64(20 + index % 80)))
                                return false
                            } catch let error as AffinityClientError {
                                return error.code == .timeout && error.processInstanceKey == key(Int64(index % 50 + 1))
                            } catch {
                                return false
                            }
                        }
                    }
                    return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(timeouts == 300)
                // cancelled requests: awaitOutcome and outcome sequences
                await withTaskGroup(of: Void.self) { group in
                    for index in 1...100 {
                        group.addTask {
                            if index.isMultiple(of: 2) {
                                _ = try? await session.awaitOutcome(
                                    processInstanceKey: key(Int64(1000 + index)), timeout: .seconds(60))
                            } else {
                                do {
                                    for try await _ in session.outcomes(processInstanceKey: key(Int64(1000 + index))) {}
                                } catch {}
                            }
                        }
                    }
                    try? await eventually("all waiting") { session.pendingState.waitingRequests == 100 }
                    #expect(session.pendingState.subscribers == 100)
                    group.cancelAll()
                }
                #expect(session.pendingState.isIdle, "\(session.pendingState)")
                #expect(session.pendingState.recentOutcomeIDs == 0)
            }
        }
    }

    @Test func cancellationUnsubscribesOnTheReplica() async throws {
        // a long ack timeout: a quick `parked` can only mean the replica saw the unsubscribe
        try await withServer({ $0.ackTimeout = .seconds(30) }) { url in
            try await withClients(session: [url]) { session, publisher in
                let instance = key(9001)
                let (firstSeen, firstSeenContinuation) = AsyncStream.makeStream(of: String.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await outcome in session.outcomes(processInstanceKey: instance) {
                            firstSeenContinuation.yield(outcome.id)
                        }
                    }
                    try await eventually("subscribed") { session.pendingState.confirmedKeys == 1 }
                    let first = try await publisher.publish(outcome("c1", instance, "{}"), timeout: .seconds(10))
                    #expect(first == .delivered)
                    var seen = firstSeen.makeAsyncIterator()
                    let firstID = await seen.next()
                    #expect(firstID == "c1")
                    group.cancelAll()
                    try? await group.waitForAll()
                }
                #expect(session.pendingState.isIdle)
                // frames of one connection are handled in order: once a later subscribe of the same
                // session got an outcome delivered, the replica has handled the unsubscribe too
                let marker = key(9002)
                async let markerOutcome = session.awaitOutcome(processInstanceKey: marker, timeout: .seconds(10))
                try await eventually("marker subscribed") { session.pendingState.confirmedKeys == 1 }
                let markerStatus = try await publisher.publish(outcome("m", marker, "{}"), timeout: .seconds(10))
                #expect(markerStatus == .delivered || markerStatus == .parked)
                #expect(try await markerOutcome.id == "m")
                let started = ContinuousClock.now
                let second = try await publisher.publish(outcome("c2", instance, "{}"), timeout: .seconds(20))
                #expect(second == .parked)
                #expect(ContinuousClock.now - started < .seconds(5))
            }
        }
    }

    @Test func duplicateOutcomeIDsAreDeliveredOnce() async throws {
        try await withServer { url in
            try await withClients(session: [url]) { session, publisher in
                let instance = key(31337)
                let received = try await withThrowingTaskGroup(of: [String].self) { group in
                    group.addTask {
                        var ids: [String] = []
                        for try await outcome in session.outcomes(processInstanceKey: instance, timeout: .seconds(10)) {
                            ids.append(outcome.id)
                            if outcome.id == "last" { break }
                        }
                        return ids
                    }
                    group.addTask {
                        try await eventually("subscribed") { session.pendingState.confirmedKeys == 1 }
                        // the same job delivered three times (a Zeebe retry), then another outcome
                        for _ in 0..<3 {
                            let status = try await publisher.publish(
                                outcome("dup", instance, #"{"v":1}"#), timeout: .seconds(10))
                            #expect(status == .delivered)
                        }
                        _ = try await publisher.publish(outcome("last", instance, "{}"), timeout: .seconds(10))
                        return []
                    }
                    var ids: [String] = []
                    for try await result in group where !result.isEmpty { ids = result }
                    return ids
                }
                #expect(received == ["dup", "last"])
                // the same job once more after the subscription ended: the replica remembers that the outcome was
                // acknowledged, answers `delivered` and hands it to nobody (it is not parked for a later subscriber)
                let repeated = try await publisher.publish(
                    outcome("dup", instance, #"{"v":1}"#), timeout: .seconds(10))
                #expect(repeated == .delivered)
                do {
                    let again = try await session.awaitOutcome(
                        processInstanceKey: instance, timeout: .milliseconds(500))
                    Issue.record("duplicate delivered again: \(again.id)")
                } catch let error as AffinityClientError {
                    #expect(error.code == .timeout)
                }
            }
        }
    }

    @Test func refusedSubscriptionEndsTheRequestWithTheReplicaCode() async throws {
        try await withServer({ $0.maxSubscriptions = 1 }) { url in
            try await withClients(session: [url]) { session, _ in
                async let first = session.awaitOutcome(processInstanceKey: key(1), timeout: .seconds(2))
                try await eventually("first subscribed") { session.pendingState.confirmedKeys == 1 }
                do {
                    _ = try await session.awaitOutcome(processInstanceKey: key(2), timeout: .seconds(5))
                    Issue.record("expected forbidden")
                } catch let error as AffinityClientError {
                    #expect(error.code == .forbidden)
                    #expect(error.processInstanceKey == key(2))
                }
                let firstResult: Result<ReceivedOutcome, any Error>
                do { firstResult = .success(try await first) } catch { firstResult = .failure(error) }
                // the first request was accepted and simply times out
                guard case .failure(let firstError as AffinityClientError) = firstResult else {
                    Issue.record("expected the first request to time out")
                    return
                }
                #expect(firstError.code == .timeout)
                #expect(session.pendingState.isIdle)
            }
        }
    }

    @Test func requestsFailWithUnavailableWhenTheSessionStops() async throws {
        try await withServer { url in
            let session = AffinitySession(configuration: testConnection([url]), logger: quietLogger)
            async let waiting: Result<ReceivedOutcome, any Error> = {
                do {
                    return .success(try await session.awaitOutcome(processInstanceKey: key(5), timeout: .seconds(30)))
                } catch {
                    return .failure(error)
                }
            }()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await session.run() }
                try await eventually("connected") { session.connectedReplica != nil }
                try await eventually("waiting") { session.pendingState.waitingRequests == 1 }
                group.cancelAll()
                try? await group.waitForAll()
            }
            guard case .failure(let error as AffinityClientError) = await waiting else {
                Issue.record("expected an AffinityClientError")
                return
            }
            #expect(error.code == .unavailable)
            #expect(error.processInstanceKey == nil || error.processInstanceKey == key(5))
            #expect(session.pendingState.isIdle)
            await #expect(throws: AffinityClientError.self) {
                _ = try await session.awaitOutcome(processInstanceKey: key(6), timeout: .seconds(1))
            }
        }
    }
}
