import AffinityProtocol

/// Sends frames on one established connection; frames sent after it ended are dropped.
struct ConnectionWriter: Sendable {
    let continuation: AsyncStream<[UInt8]>.Continuation

    /// Queues `message`; false when the connection is already gone.
    @discardableResult
    func send(_ message: AffinityMessage) -> Bool {
        if case .enqueued = continuation.yield(message.encoded()) { return true }
        return false
    }

    /// Ends the connection from this side once the frames queued so far are written: after a `drain`,
    /// a worker closes (1000) as soon as every outcome it sent was answered.
    func finish() {
        continuation.finish()
    }
}

/// What a ``ReconnectingConnection`` tells its owner.
protocol ConnectionEvents: Sendable {
    /// `welcome` arrived; `writer` sends on this connection until ``connectionEnded()``.
    func connectionReady(writer: ConnectionWriter, replica: String)
    /// A message after `welcome` (other than `drain`, which the connection handles).
    func received(_ message: AffinityMessage)
    /// The connection is gone (or never got ready); the writer no longer works.
    func connectionEnded()
    /// A worker connection got `drain`: send nothing new on it; answers to what was sent still
    /// arrive through ``received(_:)`` until ``connectionEnded()``. Clients never get this (their
    /// connection ends at `drain`).
    func connectionDraining()
}

extension ConnectionEvents {
    func connectionDraining() {}
}
