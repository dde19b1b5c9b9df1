/// What the owning replica did with a forwarded outcome.
public enum PeerDeliveryStatus: Sendable, Hashable {
    /// The owner's client received the outcome and acknowledged it.
    case delivered
    /// The owner parked the outcome durably; the client receives it when it (re)subscribes.
    case parked
    /// The receiver does not own the key (the route moved); `owner` is the replica id it believes owns it,
    /// if it knows one.
    case notOwner(owner: String?)
}
