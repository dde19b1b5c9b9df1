/// Who is on the other end of a connection, as declared in `hello` and allowed by its token.
public enum PeerRole: String, Sendable, Hashable, CaseIterable {
    /// A front-end that subscribes to process instance keys and receives outcomes.
    case client
    /// A job worker that delivers outcomes.
    case worker
}
