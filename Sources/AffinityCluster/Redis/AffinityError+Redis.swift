import AffinityProtocol
import AffinityRedis

extension AffinityError {
    /// Maps a failure of a Redis operation to the protocol's error codes: Redis unreachable or slow ->
    /// `unavailable` (also a park or ack the replicas did not confirm with `WAIT`); an ``AffinityError`` the
    /// operation threw itself (`too_large`, `conflict`, `bad_request`) stays as it is.
    static func store(_ error: any Error, operation: String) -> AffinityError {
        switch error {
        case let error as AffinityError:
            return error
        case let error as RedisError where error.code == .timeout:
            return AffinityError(code: .unavailable, message: "Redis did not answer \(operation) in time", cause: error)
        case let error as RedisError where error.code == .replication:
            // parked on the master only: a failover now could lose it, so the worker must not count on it
            return AffinityError(
                code: .unavailable, message: "Redis replicas did not confirm \(operation) in time", cause: error)
        case let error as RedisError where error.code == .connection:
            return AffinityError(code: .unavailable, message: "Redis is unreachable (\(operation))", cause: error)
        default:
            return AffinityError(
                code: .unavailable, message: "the route store failed (\(operation)): \(error)",
                cause: SendableDescription(String(describing: error)))
        }
    }
}

/// The text of an error that is not known to be `Sendable`, kept as an error's cause.
struct SendableDescription: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
