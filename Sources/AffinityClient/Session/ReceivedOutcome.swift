public import AffinityProtocol
import Foundation

/// An outcome handed to a front-end: its id, process instance key and the raw JSON of its variables.
public struct ReceivedOutcome: Sendable, Hashable {
    /// The outcome id (the Zeebe job key of the task that produced it).
    public let id: String
    /// The process instance it belongs to.
    public let processInstanceKey: ProcessInstanceKey
    /// The variables as the worker sent them: the UTF-8 bytes of one JSON object, untouched.
    public let variables: [UInt8]

    init(_ outcome: Outcome) {
        id = outcome.id
        processInstanceKey = outcome.key
        variables = outcome.variables
    }

    /// Decodes the variables into `T` with `decoder`.
    ///
    /// ```swift
    /// struct Order: Decodable { let orderId: String; let status: String }
    /// let order = try outcome.decode(Order.self)
    /// ```
    public func decode<T: Decodable>(_ type: T.Type = T.self, using decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(T.self, from: Data(variables))
    }

    /// The variables as a JSON string.
    public var variablesJSON: String { String(decoding: variables, as: UTF8.self) }
}
