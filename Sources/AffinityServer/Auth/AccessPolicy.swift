public import AffinityProtocol

/// Decides which roles a request may act in, from its `Authorization: Bearer` header.
///
/// A role whose token file is not configured is open to everyone. When a token is presented it
/// must match a configured file, otherwise the request is refused (`unauthorized`).
public struct AccessPolicy: Sendable {
    private let clientTokens: TokenFile?
    private let workerTokens: TokenFile?

    /// A policy over the given token files (nil: that role is open).
    public init(clientTokens: TokenFile?, workerTokens: TokenFile?) {
        self.clientTokens = clientTokens
        self.workerTokens = workerTokens
    }

    /// Roles that need no token.
    public var openRoles: Set<PeerRole> {
        var roles = Set<PeerRole>()
        if clientTokens == nil { roles.insert(.client) }
        if workerTokens == nil { roles.insert(.worker) }
        return roles
    }

    /// The roles the holder of `authorization` (the raw header value, if any) may act in.
    /// Throws `unauthorized` when the header is malformed or the token is wrong, or when it is
    /// missing and no role is open.
    public func grantedRoles(authorization: String?) throws(AffinityError) -> Set<PeerRole> {
        var roles = openRoles
        guard let authorization else {
            guard !roles.isEmpty else { throw AffinityError(code: .unauthorized, message: "missing bearer token") }
            return roles
        }
        let prefix = "bearer "
        guard authorization.count > prefix.count, authorization.lowercased().hasPrefix(prefix) else {
            throw AffinityError(code: .unauthorized, message: "the Authorization header must be \"Bearer <token>\"")
        }
        let token = String(authorization.dropFirst(prefix.count)).trimmingSpaces()
        let isClient = clientTokens?.contains(token) ?? false
        let isWorker = workerTokens?.contains(token) ?? false
        if isClient { roles.insert(.client) }
        if isWorker { roles.insert(.worker) }
        if !isClient && !isWorker && (clientTokens != nil || workerTokens != nil) {
            throw AffinityError(code: .unauthorized, message: "unknown bearer token")
        }
        return roles
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(
            self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed()
        )
    }
}
