import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import ZeebeTestGateway

extension EndToEndTests {
    /// Requests through both front-ends of the cluster stack, no replica lost.
    @Suite("requests through the cluster")
    struct RequestOutcomeTests {
        /// Hundreds of concurrent requests through both front-ends each come back with their own outcome.
        @Test func concurrentRequestsThroughBothFrontEndsGetTheirOwnOutcome() async throws {
            try await withAffinityStack { stack in
                let count = 300
                let result = try await sendOrders(stack, count: count, label: "concurrent")
                try await expectOwnOutcomes(result, count: count, stack: stack)
                // The workers export the jobs they completed as Prometheus metrics (a job counts once its
                // CompleteJob call returned: poll). Both did their share; worker 1 sits on r3, where no
                // front-end is, so its outcomes were all forwarded to another replica.
                var completedByWorker: [Int] = []
                let exported = await eventually(timeout: .seconds(30)) {
                    completedByWorker = []
                    for worker in stack.workers {
                        guard let metrics = try? await stack.get(worker, "/metrics"), metrics.status == .ok else {
                            return false
                        }
                        let line = metrics.text.split(separator: "\n").first {
                            $0.hasPrefix("zeebe_worker_jobs_completed_total") && $0.contains("publish-outcome")
                        }
                        completedByWorker.append(
                            line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? 0)
                    }
                    return completedByWorker.reduce(0, +) >= count
                }
                #expect(exported, "\(completedByWorker)")
                #expect(completedByWorker.allSatisfy { $0 > 0 }, "\(completedByWorker)")
                // SIGTERM: each worker finishes its jobs in flight and exits 0.
                for worker in stack.workers {
                    worker.signal(SIGTERM)
                    #expect(await worker.waitForExit(timeout: .seconds(30)) == 0, "\(worker.log)")
                }
            }
        }

        /// The chat flow: the greeting, then one outcome per message, each carrying that message's
        /// variables, with the messages sent through alternating front-ends (on different replicas).
        @Test func chatReturnsOneOutcomePerMessage() async throws {
            try await withAffinityStack { stack in
                let chatID = "chat-\(UUID().uuidString)"
                let greeting = try await stack.post(stack.demos[0], "/process/chat-process", json: ["chatId": chatID])
                #expect(greeting.status == .ok, "\(greeting.text)")
                let key = try #require(greeting.headers.first(name: "x-process-instance-key"))
                #expect(try greeting.object()["chatId"] as? String == chatID)
                let messages = 6
                for number in 1...messages {
                    let text = "message \(number) \(UUID().uuidString)"
                    let answer = try await stack.post(
                        stack.demos[number % 2], "/message/chat-message",
                        json: [
                            "correlationKey": chatID, "processInstanceKey": key,
                            "variables": ["text": text, "messageNumber": number],
                        ])
                    #expect(answer.status == .ok, "\(answer.text)")
                    let variables = try answer.object()
                    #expect(variables["text"] as? String == text)
                    #expect(variables["messageNumber"] as? Int == number)
                }
                // One publish-outcome job per outcome (greeting + messages), each completed once, and the
                // instance waits for the next message.
                let settled = try await eventually(timeout: .seconds(30)) {
                    let engine = try await stack.engine()
                    let jobs = engine.jobs.filter { $0.processInstanceKey == key && $0.type == "publish-outcome" }
                    return jobs.count == messages + 1 && jobs.allSatisfy { $0.state == .completed }
                        && engine.instances.first { $0.key == key }?.currentElementId == "wait-for-message"
                }
                let engine = try await stack.engine()
                #expect(settled, "\(engine.jobs.filter { $0.processInstanceKey == key })")
                #expect(engine.instances.first { $0.key == key }?.state == .active)
                #expect(engine.incidents.isEmpty, "\(engine.incidents)")
            }
        }

        /// Hundreds of two-turn chats, the greeting through one front-end and the message through the other
        /// (no sticky sessions): the second turn is answered with its own outcome, never with the first turn's
        /// (an outcome acknowledged by the first front-end must not stay parked for the second).
        @Test(.timeLimit(.minutes(5)))
        func twoTurnChatsAcrossFrontEndsGetNoStaleAnswer() async throws {
            try await withAffinityStack { stack in
                let chats = 200
                let wrong = try await withThrowingTaskGroup(of: String?.self) { group in
                    var started = 0
                    var wrong: [String] = []
                    func startChat(_ index: Int) {
                        group.addTask {
                            let chatID = "two-turn-\(index)-\(UUID().uuidString)"
                            let first = stack.demos[index % 2]
                            let second = stack.demos[(index + 1) % 2]
                            let greeting = try await stack.post(
                                first, "/process/chat-process", json: ["chatId": chatID])
                            guard greeting.status == .ok,
                                let key = greeting.headers.first(name: "x-process-instance-key")
                            else { return "chat \(index) greeting: \(greeting.status) \(greeting.text)" }
                            let text = "turn 2 of \(chatID)"
                            let answer = try await stack.post(
                                second, "/message/chat-message",
                                json: [
                                    "correlationKey": chatID, "processInstanceKey": key,
                                    "variables": ["text": text, "messageNumber": 1],
                                ])
                            guard answer.status == .ok, let variables = try? answer.object(),
                                variables["text"] as? String == text
                            else { return "chat \(index) turn 2: \(answer.status) \(answer.text)" }
                            return nil
                        }
                    }
                    // 20 chats at a time
                    while started < min(20, chats) {
                        startChat(started)
                        started += 1
                    }
                    while let result = try await group.next() {
                        if let result { wrong.append(result) }
                        if started < chats {
                            startChat(started)
                            started += 1
                        }
                    }
                    return wrong
                }
                #expect(wrong.isEmpty, "\(wrong.count) of \(chats) chats went wrong: \(wrong.prefix(5))")
                let engine = try await stack.engine()
                #expect(engine.incidents.isEmpty, "\(engine.incidents)")
            }
        }

        /// A request whose process never produces an outcome answers 504 with its process instance key;
        /// bad input gets a clear status and the front-end keeps serving.
        @Test func missingOutcomeAnswers504WithTheKey() async throws {
            var options = AffinityStackOptions()
            options.demoTimeout = "3s"
            try await withAffinityStack(options) { stack in
                // The chat process waits for a message after its greeting: its second outcome never comes.
                let chatID = "silent-\(UUID().uuidString)"
                let greeting = try await stack.post(stack.demos[1], "/process/chat-process", json: ["chatId": chatID])
                #expect(greeting.status == .ok, "\(greeting.text)")
                let key = try #require(greeting.headers.first(name: "x-process-instance-key"))
                let answer = try await stack.post(
                    stack.demos[1], "/message/not-a-message-of-this-process",
                    json: ["correlationKey": chatID, "processInstanceKey": key])
                #expect(answer.status == .gatewayTimeout)
                #expect(try answer.object()["processInstanceKey"] as? String == key)
                let notAnObject = try await stack.send(
                    stack.demos[1], "/process/order-process", method: .POST, body: Data("[1,2]".utf8))
                #expect(notAnObject.status == .badRequest)
                let malformed = try await stack.send(
                    stack.demos[1], "/message/chat-message", method: .POST, body: Data("{\"correlationKey\":".utf8))
                #expect(malformed.status == .badRequest)
                #expect(try malformed.object()["error"] as? String == "bad_request")
                let unknown = try await stack.post(stack.demos[1], "/process/no-such-process", json: [:])
                #expect(unknown.status == .notFound, "\(unknown.text)")
                let ready = try await stack.get(stack.demos[1], "/health/ready")
                #expect(ready.status == .ok)
            }
        }
    }
}
