/// The addresses a running replica listens on (useful with port 0).
public struct ListeningPorts: Sendable, Hashable {
    /// The WebSocket + HTTP port.
    public var main: Int
    /// The separate metrics port, when configured.
    public var metrics: Int?
}
