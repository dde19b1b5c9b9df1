import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization
import Testing
import ZeebeTestGateway

/// One order request and its answer.
struct OrderAnswer: Sendable {
    /// The unique variable the request carried; its answer must carry it back.
    let requestID: String
    let answer: HTTPAnswer
}

/// How far a load run is: answers received so far, live, while the disruption runs.
final class LoadProgress: Sendable {
    let count: Int
    private let answeredCount = Mutex(0)

    init(count: Int) { self.count = count }

    func recordAnswer() { answeredCount.withLock { $0 += 1 } }

    /// Answers received and requests still pending, right now.
    var now: LoadSnapshot {
        let answered = answeredCount.withLock { $0 }
        return LoadSnapshot(answered: answered, pending: count - answered)
    }
}

/// Answers received and requests pending at one moment.
struct LoadSnapshot: Sendable {
    let answered: Int
    let pending: Int
}

/// Something done to the stack while requests are in flight, once `afterAnswers` answers came back; it
/// returns the progress at its decisive moment (e.g. the instant of the kill).
struct LoadDisruption: Sendable {
    let afterAnswers: Int
    let action: @Sendable (LoadProgress) async throws -> LoadSnapshot
}

/// What a load run saw.
struct OrderLoadResult: Sendable {
    let answers: [OrderAnswer]
    /// What the disruption returned.
    let atDisruption: LoadSnapshot?
}

/// Sends `count` concurrent `POST /process/order-process` requests, alternating between the two
/// front-ends, each with a unique `requestId`; runs `disruption` (if any) once its number of answers
/// came back, while the other requests are provably in flight (counted live).
func sendOrders(
    _ stack: AffinityStack, count: Int, label: String, disruption: LoadDisruption? = nil
) async throws -> OrderLoadResult {
    let progress = LoadProgress(count: count)
    return try await withThrowingTaskGroup(of: OrderAnswer?.self) { group in
        for index in 0..<count {
            let demo = stack.demos[index % stack.demos.count]
            let requestID = "\(label)-\(index)-\(UUID().uuidString)"
            group.addTask {
                let answer = try await stack.post(
                    demo, "/process/order-process", json: ["requestId": requestID, "index": index])
                progress.recordAnswer()
                return OrderAnswer(requestID: requestID, answer: answer)
            }
        }
        var disrupted = false
        if let disruption {
            group.addTask {
                while progress.now.answered < disruption.afterAnswers {
                    try await Task.sleep(for: .milliseconds(5))
                }
                return nil
            }
        }
        var answers: [OrderAnswer] = []
        var snapshot: LoadSnapshot?
        while let next = try await group.next() {
            if let answer = next {
                answers.append(answer)
            } else if let disruption, !disrupted {
                disrupted = true
                snapshot = try await disruption.action(progress)
            }
        }
        return OrderLoadResult(answers: answers, atDisruption: snapshot)
    }
}

/// Checks that every request answered 200 with its own outcome (its `requestId` back, the first task's
/// `prepared`), each from its own process instance, and that the test gateway shows every one of those
/// instances completed with its `publish-outcome` job completed and no incident. Returns the engine
/// state for further checks.
@discardableResult
func expectOwnOutcomes(
    _ result: OrderLoadResult, count: Int, stack: AffinityStack, sourceLocation: SourceLocation = #_sourceLocation
) async throws -> EngineInspection {
    #expect(result.answers.count == count, sourceLocation: sourceLocation)
    var keys = Set<String>()
    var wrong = 0
    for order in result.answers {
        guard order.answer.status == .ok, let variables = try? order.answer.object(),
            variables["requestId"] as? String == order.requestID, variables["prepared"] as? Bool == true,
            let key = order.answer.headers.first(name: "x-process-instance-key")
        else {
            wrong += 1
            if wrong <= 5 {
                Issue.record(
                    "request \(order.requestID): \(order.answer.status) \(order.answer.text)",
                    sourceLocation: sourceLocation)
            }
            continue
        }
        keys.insert(key)
    }
    #expect(wrong == 0, "\(wrong) of \(count) requests did not get their own outcome", sourceLocation: sourceLocation)
    #expect(keys.count == count, "each request has its own process instance", sourceLocation: sourceLocation)
    // The worker completes a publish-outcome job only once its outcome was acknowledged or parked, so
    // every instance runs to its end (the job may complete just after the answer: poll).
    var engine = try await stack.engine()
    let allCompleted = try await eventually(timeout: .seconds(60)) {
        engine = try await stack.engine()
        let completed = Set(engine.instances.filter { $0.state == .completed }.map(\.key))
        return keys.isSubset(of: completed)
    }
    let notCompleted = engine.instances.filter { keys.contains($0.key) && $0.state != .completed }
    #expect(allCompleted, "instances not completed: \(notCompleted.prefix(5))", sourceLocation: sourceLocation)
    let publishJobs = engine.jobs.filter { $0.type == "publish-outcome" && keys.contains($0.processInstanceKey) }
    #expect(publishJobs.count == count, sourceLocation: sourceLocation)
    #expect(publishJobs.allSatisfy { $0.state == .completed }, sourceLocation: sourceLocation)
    let incidents = engine.incidents.filter { keys.contains($0.processInstanceKey) }
    #expect(incidents.isEmpty, "\(incidents.prefix(5))", sourceLocation: sourceLocation)
    if wrong > 0 { recordWhatHappened(to: result, engine: engine, stack: stack, sourceLocation: sourceLocation) }
    return engine
}

/// For the first requests that did not get their outcome: where their process instance's jobs are in
/// the engine and what each process logged about the instance, so that a failure says whether an outcome
/// was lost (its `publish-outcome` job completed) or only late (the job still retrying).
private func recordWhatHappened(
    to result: OrderLoadResult, engine: EngineInspection, stack: AffinityStack, sourceLocation: SourceLocation
) {
    let unanswered = result.answers.filter { $0.answer.status != .ok }.prefix(3)
    for order in unanswered {
        guard let key = (try? order.answer.object())?["processInstanceKey"] as? String else { continue }
        var jobs: [String] = []
        for job in engine.jobs where job.processInstanceKey == key {
            let failures: [String] = job.failures.map(\.message)
            jobs.append("\(job.type) \(job.key): \(job.state), worker \(job.worker ?? "-"), failures: \(failures)")
        }
        let needles = [key] + engine.jobs.filter { $0.processInstanceKey == key }.map(\.key)
        var logged: [String] = []
        for child in stack.children {
            let lines = child.log.split(separator: "\n").filter { line in needles.contains { line.contains($0) } }
                .suffix(12)
            logged.append("== \(child.name)\n" + lines.joined(separator: "\n"))
        }
        let report = (["instance \(key) of request \(order.requestID):"] + jobs + logged).joined(separator: "\n")
        Issue.record(Comment(rawValue: report), sourceLocation: sourceLocation)
    }
}
