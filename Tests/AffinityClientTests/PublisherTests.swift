import AffinityClient
import AffinityProtocol
import AffinityServer
import Foundation
import Testing

@Suite(.timeLimit(.minutes(2))) struct PublisherTests {
    @Test func failsFastWithUnavailableWhenNoReplicaIsReachable() async throws {
        // ports held bound without a listener: refused for the whole test, and no other test can take them
        try await withRefusingPort { first in
            try await withRefusingPort { second in
                try await publishFailsFast(urls: [webSocketURL(port: first), webSocketURL(port: second)])
            }
        }
    }

    private func publishFailsFast(urls: [String]) async throws {
        let publisher = OutcomePublisher(configuration: testConnection(urls), logger: quietLogger)
        try await withRunning(publisher) {
            try await Task.sleep(for: .milliseconds(300))  // several refused attempts
            #expect(!publisher.isConnected)
            let started = ContinuousClock.now
            do {
                _ = try await publisher.publish(outcome("j1", key(8), "{}"), timeout: .seconds(30))
                Issue.record("expected unavailable")
            } catch let error as AffinityClientError {
                #expect(error.code == .unavailable)
                #expect(error.outcomeID == "j1")
                #expect(error.processInstanceKey == key(8))
            }
            #expect(ContinuousClock.now - started < .milliseconds(500))
            #expect(publisher.pendingCount == 0)
        }
    }

    @Test func emptyURLListIsAConfigurationError() async throws {
        let publisher = OutcomePublisher(configuration: .init(urls: []), logger: quietLogger)
        await #expect(throws: AffinityClientError.self) { try await publisher.run() }
        let session = AffinitySession(configuration: .init(urls: []), logger: quietLogger)
        await #expect(throws: AffinityClientError.self) { try await session.run() }
    }

    @Test func pipelinesManyOutcomesOnOneConnection() async throws {
        try await withServer { url in
            try await withClients(session: [url]) { _, publisher in
                let statuses = try await withThrowingTaskGroup(of: DeliveryStatus.self) { group in
                    for index in 1...200 {
                        group.addTask {
                            try await publisher.publish(
                                outcome("bulk-\(index)", key(Int64(10_000 + index)), #"{"i":\#(index)}"#),
                                timeout: .seconds(20))
                        }
                    }
                    return try await group.reduce(into: [DeliveryStatus]()) { $0.append($1) }
                }
                #expect(statuses.count == 200)
                #expect(statuses.allSatisfy { $0 == .parked })
                #expect(publisher.pendingCount == 0)
            }
        }
    }

    @Test func oversizedOutcomeIsRefusedBeforeSending() async throws {
        try await withServer({ $0.maxMessageBytes = 2048 }) { url in
            var configuration = testConnection([url])
            configuration.maxOutcomeBytes = 2048
            let publisher = OutcomePublisher(configuration: configuration, logger: quietLogger)
            try await withRunning(publisher) {
                try await eventually("connected") { publisher.isConnected }
                let large = #"{"blob":""# + String(repeating: "x", count: 4096) + #""}"#
                do {
                    _ = try await publisher.publish(outcome("big", key(3), large), timeout: .seconds(10))
                    Issue.record("expected too_large")
                } catch let error as AffinityClientError {
                    #expect(error.code == .tooLarge)
                    #expect(error.outcomeID == "big")
                }
                let status = try await publisher.publish(outcome("small", key(3), "{}"), timeout: .seconds(10))
                #expect(status == .parked)
            }
        }
    }

    @Test func refusedOutcomeEndsWithTheServiceErrorCode() async throws {
        // one parked outcome per key: the second is refused with `too_large` and its id as ref
        try await withServer({ $0.maxParkedPerKey = 1 }) { url in
            let publisher = OutcomePublisher(configuration: testConnection([url]), logger: quietLogger)
            try await withRunning(publisher) {
                try await eventually("connected") { publisher.isConnected }
                let first = try await publisher.publish(outcome("full-1", key(3), "{}"), timeout: .seconds(10))
                #expect(first == .parked)
                do {
                    _ = try await publisher.publish(outcome("full-2", key(3), "{}"), timeout: .seconds(10))
                    Issue.record("expected too_large")
                } catch let error as AffinityClientError {
                    #expect(error.code == .tooLarge)
                    #expect(error.outcomeID == "full-2")
                    #expect(error.processInstanceKey == key(3))
                }
                // the connection survives and keeps working
                let other = try await publisher.publish(outcome("other", key(4), "{}"), timeout: .seconds(10))
                #expect(other == .parked)
                #expect(publisher.pendingCount == 0)
            }
        }
    }

    @Test func timeoutWhenNoAnswerComes() async throws {
        // a delivery to a subscriber that never acks waits for the replica's ack timeout
        try await withServer({ $0.ackTimeout = .seconds(20) }) { url in
            try await withClients(session: [url]) { session, publisher in
                let instance = key(64)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // iterate but never ask for the next outcome after the subscribe: nothing is acked
                        var iterator = session.outcomes(processInstanceKey: instance).makeAsyncIterator()
                        try await Task.sleep(for: .seconds(60))
                        _ = try await iterator.next()
                    }
                    try await eventually("subscribed") { session.pendingState.confirmedKeys == 1 }
                    do {
                        _ = try await publisher.publish(outcome("slow", instance, "{}"), timeout: .milliseconds(300))
                        Issue.record("expected a timeout")
                    } catch let error as AffinityClientError {
                        #expect(error.code == .timeout)
                        #expect(error.outcomeID == "slow")
                    }
                    #expect(publisher.pendingCount == 0)
                    group.cancelAll()
                }
            }
        }
    }
}
