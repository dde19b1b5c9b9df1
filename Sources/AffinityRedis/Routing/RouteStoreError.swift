/// An error of ``RedisRouteStore`` that is not a Redis failure (those throw ``RedisError``).
public struct RouteStoreError: Error, Sendable, CustomStringConvertible {
    /// The stable category of a ``RouteStoreError``.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let value: String
        private init(_ value: String) { self.value = value }

        /// The key already holds the maximum number of parked outcomes.
        public static let parkedLimitReached = Code("parked_limit_reached")
        /// The key already holds the maximum number of bytes of parked outcomes.
        public static let parkedBytesLimitReached = Code("parked_bytes_limit_reached")
        /// The outcome id is parked already with another payload; the first one is kept.
        public static let conflict = Code("conflict")
        /// Another live instance is registered under this replica id.
        public static let replicaIdInUse = Code("replica_id_in_use")
        /// A process instance key or replica id cannot be used in a Redis key (empty, too long, or with `{`/`}`).
        public static let invalidKey = Code("invalid_key")
        /// A script answered with a shape the store does not understand.
        public static let unexpectedReply = Code("unexpected_reply")

        /// The stable text of the code.
        public var description: String { value }
    }

    /// The category.
    public var code: Code
    /// What happened, for people.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// `route_store.<code>: message`.
    public var description: String { "route_store.\(code): \(message)" }
}
