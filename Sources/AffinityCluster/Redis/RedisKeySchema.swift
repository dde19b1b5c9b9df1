import AffinityProtocol
import AffinityRedis

/// The names of the cluster's Redis keys (docs/REDIS.md): everything of process instance K under the hash tag
/// `{K}` (so that every script touches one Redis Cluster slot), a replica's registration under `{id}`, all
/// behind a prefix (`affinity:` by default) so that several deployments can share one Redis.
public struct RedisKeySchema: Sendable, Hashable {
    /// The prefix of every key.
    public let prefix: String

    /// The keys of one process instance.
    struct InstanceKeys {
        /// `<prefix>{<key>}`, the part every key of the instance shares; each key is made when it is used (a
        /// script takes three to five of them).
        let tagged: String

        /// A hash {replica, client}: who holds the subscription (route TTL).
        var route: String { tagged + ":route" }
        /// A list of the parked outcome ids, oldest first (park TTL).
        var parked: String { tagged + ":parked" }
        /// A hash id -> parked `outcome` frame (park TTL).
        var outcomes: String { tagged + ":outcomes" }
        /// A set of the ids clients acknowledged (park TTL).
        var acknowledged: String { tagged + ":acknowledged" }
        /// The sum of the parked frames' sizes (park TTL).
        var bytes: String { tagged + ":bytes" }
    }

    /// Creates the schema with keys under `prefix`.
    public init(prefix: String = "affinity:") {
        self.prefix = prefix
    }

    /// The keys of process instance `key`, all with the hash tag `{key}`.
    func instance(_ key: ProcessInstanceKey) -> InstanceKeys {
        InstanceKeys(tagged: prefix + "{" + key.description + "}")
    }

    /// The registration key of replica `id`.
    func replica(_ id: String) throws(AffinityError) -> String {
        "\(prefix)replica:{\(try Self.replicaID(id))}"
    }

    /// `id` if it can name a replica in a key (1 to ``AffinityLimits/maximumIdentifierBytes`` bytes, no
    /// braces, which would change the hash tag), else `bad_request`.
    static func replicaID(_ id: String) throws(AffinityError) -> String {
        guard !id.isEmpty, id.utf8.count <= AffinityLimits.maximumIdentifierBytes, !id.contains("{"),
            !id.contains("}")
        else {
            throw AffinityError(
                code: .badRequest,
                message:
                    "'\(id.prefix(64))' is not a usable replica id (1 to \(AffinityLimits.maximumIdentifierBytes) bytes, no braces)"
            )
        }
        return id
    }
}

extension RedisArgument {
    /// A duration as whole milliseconds (at least 1), as `PEXPIRE` takes it.
    init(milliseconds duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(Int(max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)))
    }
}

extension AffinityError {
    /// A script or command answered with a shape this replica does not understand (another version's
    /// script under the same name, or a proxy in between): the store cannot be used, `unavailable`.
    static func unexpectedReply(_ operation: String, _ reply: RedisReply) -> AffinityError {
        AffinityError(code: .unavailable, message: "\(operation) got an unexpected reply from Redis: \(reply)")
    }
}
