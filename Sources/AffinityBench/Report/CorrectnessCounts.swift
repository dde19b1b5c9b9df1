/// What the load observed about every outcome it sent: the benchmark is also a correctness check.
public struct CorrectnessCounts: Codable, Sendable, Equatable {
    /// Outcomes the workers sent.
    public var sent = 0
    /// Outcomes received by the client that subscribed to their key, with the expected id.
    public var received = 0
    /// Outcomes answered `delivered` without reaching their client.
    public var lost = 0
    /// Outcomes received by a client that was not waiting for them.
    public var wrongClient = 0
    /// Outcomes received twice.
    public var duplicates = 0
    /// Outcomes whose variables differ from the bytes sent.
    public var corrupted = 0
    /// Deliveries answered `parked` or with an error instead of `delivered`.
    public var notDelivered = 0
    /// Frames the protocol does not allow at that point, or error frames.
    public var protocolErrors = 0

    /// No counts.
    public init() {}

    /// True when every sent outcome reached exactly its own client, intact, and nothing else went wrong.
    public var isClean: Bool {
        sent == received && lost == 0 && wrongClient == 0 && duplicates == 0 && corrupted == 0
            && notDelivered == 0 && protocolErrors == 0
    }

    /// The sum of two counts.
    public static func + (lhs: CorrectnessCounts, rhs: CorrectnessCounts) -> CorrectnessCounts {
        var sum = lhs
        sum.sent += rhs.sent
        sum.received += rhs.received
        sum.lost += rhs.lost
        sum.wrongClient += rhs.wrongClient
        sum.duplicates += rhs.duplicates
        sum.corrupted += rhs.corrupted
        sum.notDelivered += rhs.notDelivered
        sum.protocolErrors += rhs.protocolErrors
        return sum
    }

    /// A one-line description of what is wrong, for error messages.
    public var problems: String {
        var parts: [String] = []
        if sent != received { parts.append("sent \(sent) but received \(received)") }
        if lost > 0 { parts.append("\(lost) lost") }
        if wrongClient > 0 { parts.append("\(wrongClient) at the wrong client") }
        if duplicates > 0 { parts.append("\(duplicates) duplicates") }
        if corrupted > 0 { parts.append("\(corrupted) with altered variables") }
        if notDelivered > 0 { parts.append("\(notDelivered) not answered delivered") }
        if protocolErrors > 0 { parts.append("\(protocolErrors) unexpected frames") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}
