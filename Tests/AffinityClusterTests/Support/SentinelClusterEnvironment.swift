import AffinityProtocol
import AffinityTestSupport
import Foundation

/// Runs `body` with a fresh cluster CA and a Sentinel deployment (master, replica, three sentinels) whose
/// `redis-sentinel://` URL the replicas get; kills every replica and Redis process afterwards.
/// The sentinels count a node as down after `downAfter` (2 s: with three replica processes building load on
/// a small machine, 1 s risks a failover nobody asked for).
func withSentinelClusterEnvironment<T>(
    downAfter: Duration = .seconds(2), _ body: (ClusterEnvironment, RedisSentinelDeployment) async throws -> T
) async throws -> T {
    try await withTestPKI { pki in
        let authority = try await offloaded { try pki.makeAuthority("cluster") }
        return try await withRedisSentinelDeployment(downAfter: downAfter) { deployment in
            let environment = ClusterEnvironment(
                redis: deployment.nodes[0], pki: pki, authority: authority, directory: pki.directory,
                redisURL: deployment.url)
            defer { environment.killAll() }
            return try await body(environment, deployment)
        }
    }
}

/// Sends the outcomes with at most `window` unanswered, as a Zeebe worker would: an outcome answered
/// `unavailable` or `timeout` is sent again after `retryDelay` (its job would be failed with a back-off and
/// handed out again). Returns the final answers (`delivered`, `parked` or a permanent error code) and how many
/// answers were retried. `afterEachAnswer` sees the number of answers so far.
func deliverRetryingTransientErrors(
    _ outcomes: [Outcome], through worker: ClusterSocket, window: Int, retryDelay: Duration = .milliseconds(250),
    deadline: Duration = .seconds(120), afterEachAnswer: (Int) async throws -> Void = { _ in }
) async throws -> (answers: [String: String], retried: Int) {
    let byID = Dictionary(uniqueKeysWithValues: outcomes.map { ($0.id, $0) })
    var queue = outcomes[...]
    var retryAt: [(ContinuousClock.Instant, Outcome)] = []
    var answers: [String: String] = [:]
    var answered = 0
    var retried = 0
    var inFlight = 0
    let end = ContinuousClock.now + deadline
    while answers.count < outcomes.count {
        guard ContinuousClock.now < end else {
            throw FixtureError("\(outcomes.count - answers.count) outcomes still unanswered after \(deadline)")
        }
        let now = ContinuousClock.now
        while let due = retryAt.first, due.0 <= now {
            retryAt.removeFirst()
            queue.append(due.1)
        }
        while inFlight < window, let outcome = queue.popFirst() {
            worker.send(.outcome(outcome))
            inFlight += 1
        }
        guard inFlight > 0 else {
            try await Task.sleep(for: .milliseconds(20))
            continue
        }
        let status: String
        let id: String
        switch try await worker.next(timeout: .seconds(60)) {
        case .result(let answeredID, let result):
            (id, status) = (answeredID, result.rawValue)
        case .error(let code, _, let ref?):
            (id, status) = (ref, code.rawValue)
        case let other:
            throw FixtureError("expected a result, got \(other)")
        }
        inFlight -= 1
        answered += 1
        if status == "unavailable" || status == "timeout", let outcome = byID[id] {
            retried += 1
            retryAt.append((ContinuousClock.now + retryDelay, outcome))
        } else {
            answers[id] = status
        }
        try await afterEachAnswer(answered)
    }
    return (answers, retried)
}
