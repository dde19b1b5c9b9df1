import AffinityProtocol
import Synchronization

/// Thread-safe records shared between a test's client and worker tasks.
final class OutcomeLedger: Sendable {
    private let receivedOutcomes = Mutex<[String: ProcessInstanceKey]>([:])
    private let workerAnswers = Mutex<[String: String]?>(nil)

    /// Records an outcome a client received (by id; a duplicate is recorded once).
    func record(_ outcome: Outcome) {
        receivedOutcomes.withLock { $0[outcome.id] = outcome.key }
    }

    /// Every outcome received so far: id -> key.
    var received: [String: ProcessInstanceKey] { receivedOutcomes.withLock { $0 } }

    /// Stores the worker's final answers (id -> `delivered`, `parked` or an error code).
    func finish(with answers: [String: String]) {
        workerAnswers.withLock { $0 = answers }
    }

    /// The worker's answers once it finished.
    var answers: [String: String]? { workerAnswers.withLock { $0 } }

    /// The ids answered `delivered` or `parked`.
    var acknowledgedIDs: [String] {
        (answers ?? [:]).filter { $0.value == "delivered" || $0.value == "parked" }.map(\.key)
    }

    /// Whether the worker finished and every acknowledged outcome was received.
    var everyAcknowledgedOutcomeReceived: Bool {
        guard answers != nil else { return false }
        let received = self.received
        return acknowledgedIDs.allSatisfy { received[$0] != nil }
    }
}

/// `keys` consecutive process instance keys from `firstKey`, and `outcomes` outcomes spread over them in
/// turn, with ids `<idPrefix>-<n>` and variables `{"i":n}`.
func outcomeLoad(
    firstKey: Int64, keys keyCount: Int, outcomes count: Int, idPrefix: String
) throws -> (keys: [ProcessInstanceKey], outcomes: [Outcome]) {
    let keys = (0..<keyCount).compactMap { ProcessInstanceKey(firstKey + Int64($0)) }
    let outcomes = try (0..<count).map { index in
        try Outcome(
            id: "\(idPrefix)-\(index)", key: keys[index % keys.count], variables: Array(#"{"i":\#(index)}"#.utf8))
    }
    return (keys, outcomes)
}
