public import AffinityProtocol

/// What a replica does with an outcome another replica forwarded to it.
///
/// The replica's delivery coordinator implements this: push the outcome to the local subscriber and wait for its
/// ack, or park it, or answer ``ForwardedDeliveryStatus/notOwner(owner:)`` when the key's route moved.
/// Throwing means "neither delivered nor parked": the forwarding replica sees an `unavailable` error and
/// decides itself (park if the route still points here, or forward elsewhere). A thrown `RPCError` is passed
/// to the caller unchanged. The handler's task is cancelled when the caller's deadline passes or the caller
/// goes away; a handler that already delivered may still return its status (the caller has stopped
/// listening, and a duplicate later is dropped by the client by outcome id).
public protocol PeerDeliveryHandler: Sendable {
    /// Handles one forwarded outcome.
    ///
    /// - Parameters:
    ///   - outcome: The outcome, already validated (id, key, variables one JSON object).
    ///   - caller: The replica that forwarded it.
    /// - Returns: What became of the outcome.
    func deliver(_ outcome: Outcome, from caller: PeerCaller) async throws -> ForwardedDeliveryStatus

    /// Hands an outcome to this replica's legacy-protocol clients only (the Node package's broadcast; the
    /// forwarding replica took care of everything else). The caller is answered `delivered` once it returns.
    ///
    /// - Parameters:
    ///   - outcome: The outcome, already validated.
    ///   - caller: The replica that sent it.
    func deliverToLegacyClients(_ outcome: Outcome, from caller: PeerCaller) async throws

    /// The `DeliverStream` that carried these outcomes broke after they were answered `delivered`, so the
    /// forwarding replica may never have received those answers. It then parks each such outcome while the
    /// route still names this replica (it cannot know that a client acknowledged it), and the key's next
    /// subscriber would receive it once more. The handler makes the shared store remember them as acknowledged,
    /// which removes such a parked copy or keeps it from being made.
    ///
    /// Called at most once per broken stream, with the outcomes answered `delivered` in the last
    /// ``PeerServerConfiguration/deliveredAnswerMemory`` before the break (and any answered while it broke).
    ///
    /// - Parameter outcomes: The process instance key and id of each outcome, oldest first.
    func deliveredAnswersMayBeLost(_ outcomes: [PeerDeliveredOutcome]) async
}

/// An outcome a replica answered `delivered` on the peer channel: its process instance key and id.
public struct PeerDeliveredOutcome: Sendable, Hashable {
    /// The outcome's process instance key.
    public var key: ProcessInstanceKey
    /// The outcome's id.
    public var id: String

    /// Creates a reference to a delivered outcome.
    public init(key: ProcessInstanceKey, id: String) {
        self.key = key
        self.id = id
    }
}

/// Who sent a forwarded outcome, as the peer server saw it: the TLS client identity and the socket address.
public struct PeerCaller: Sendable, Hashable {
    /// The remote socket address, in gRPC's notation (for example `ipv4:10.0.0.7:51234`).
    public var remoteAddress: String
    /// The subject of the client certificate the caller presented (already verified against the CA), if the
    /// transport exposed it.
    public var certificateSubject: String?

    /// Creates a caller description.
    public init(remoteAddress: String, certificateSubject: String?) {
        self.remoteAddress = remoteAddress
        self.certificateSubject = certificateSubject
    }
}
