/// Why a replica cannot run as a member of the cluster; its description is one line for the operator.
public struct ClusterStartupError: Error, Sendable, CustomStringConvertible {
    /// A stable code: `replica_id_in_use` or `replica_id_taken_over`.
    public var code: String
    /// What happened and what to do.
    public var message: String

    /// Creates an error.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
