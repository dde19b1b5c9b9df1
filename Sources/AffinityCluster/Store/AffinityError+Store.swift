import AffinityProtocol
import AffinityRedis

extension AffinityError {
    /// Maps a failure of the Redis route store to the protocol's error codes: Redis unreachable or slow ->
    /// `unavailable` (also a park or ack the replicas did not confirm with `WAIT`); too many parked outcomes (or bytes) for a key -> `too_large`;
    /// an id parked with another payload -> `conflict`; an unusable key or id -> `bad_request`.
    static func store(_ error: any Error, operation: String) -> AffinityError {
        switch error {
        case let error as AffinityError:
            return error
        case let error as RouteStoreError where error.code == .parkedLimitReached:
            return AffinityError(
                code: .tooLarge, message: "too many outcomes are parked for this key: \(error.message)", cause: error)
        case let error as RouteStoreError where error.code == .parkedBytesLimitReached:
            return AffinityError(
                code: .tooLarge, message: "too many bytes are parked for this key: \(error.message)", cause: error)
        case let error as RouteStoreError where error.code == .conflict:
            return AffinityError(
                code: .conflict, message: "the outcome id is parked already with another payload; the first is kept",
                cause: error)
        case let error as RouteStoreError where error.code == .invalidKey:
            return AffinityError(code: .badRequest, message: error.message, cause: error)
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
