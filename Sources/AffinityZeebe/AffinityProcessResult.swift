public import AffinityClient
public import Foundation

/// What ``AffinityZeebeClient`` answers: the process instance key and the outcome the instance produced.
public struct AffinityProcessResult: Sendable, Hashable {
    /// The process instance key (the Zeebe key, int64).
    public let processInstanceKey: Int64
    /// The outcome: its id (the job key) and the raw JSON of its variables.
    public let outcome: ReceivedOutcome

    /// Creates a result.
    public init(processInstanceKey: Int64, outcome: ReceivedOutcome) {
        self.processInstanceKey = processInstanceKey
        self.outcome = outcome
    }

    /// The outcome's variables as a JSON object text.
    public var variablesJSON: String { outcome.variablesJSON }

    /// Decodes the outcome's variables into `T`.
    public func decode<T: Decodable>(_ type: T.Type = T.self, using decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try outcome.decode(T.self, using: decoder)
    }
}
