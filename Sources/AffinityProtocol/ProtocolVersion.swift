/// The version of the affinity wire protocol this package speaks (docs/PROTOCOL.md).
public enum ProtocolVersion {
    /// Protocol v1: JSON text frames over `/v1/ws` and the `/v1/outcomes` HTTP endpoints.
    public static let current = 1
}
