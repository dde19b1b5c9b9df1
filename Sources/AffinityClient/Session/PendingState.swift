/// What an ``AffinitySession`` holds for running requests (for health checks, metrics and tests).
public struct PendingState: Sendable, Hashable, CustomStringConvertible {
    /// Running requests (`awaitOutcome` calls and `outcomes` iterations).
    public var subscribers: Int
    /// Distinct process instance keys subscribed.
    public var keys: Int
    /// Keys the connected replica confirmed with `subscribed`.
    public var confirmedKeys: Int
    /// Requests suspended waiting for an outcome.
    public var waitingRequests: Int
    /// Outcomes received and not yet taken by their request.
    public var bufferedOutcomes: Int
    /// Outcome ids remembered for the subscribed keys (de-duplication).
    public var rememberedOutcomeIDs: Int
    /// Outcome ids remembered after their request ended (bounded).
    public var recentOutcomeIDs: Int
    /// Per-request mailboxes.
    public var mailboxes: Int

    /// True when no request holds anything (the bounded recent-id set aside).
    public var isIdle: Bool {
        subscribers == 0 && keys == 0 && waitingRequests == 0 && bufferedOutcomes == 0 && rememberedOutcomeIDs == 0
            && mailboxes == 0
    }

    /// A one-line summary.
    public var description: String {
        "subscribers=\(subscribers) keys=\(keys) confirmed=\(confirmedKeys) waiting=\(waitingRequests) buffered=\(bufferedOutcomes) "
            + "ids=\(rememberedOutcomeIDs) recent=\(recentOutcomeIDs) mailboxes=\(mailboxes)"
    }
}
