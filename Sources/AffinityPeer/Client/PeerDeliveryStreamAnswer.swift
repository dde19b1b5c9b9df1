/// What a forward on a `DeliverStream` gets back (``PeerDeliveryStreamState``).
enum PeerDeliveryStreamAnswer: Sendable {
    /// The peer's answer.
    case response(Affinity_Peer_V1_DeliverResponse)
    /// The request failed (deadline, cancellation, broken stream) with this classification.
    case failure(PeerDeliveryError)
    /// The peer does not serve `DeliverStream` (an older version): send this request with `Deliver`.
    case useUnary
}
