import AffinityProtocol
import Synchronization

/// The outcomes of one process instance, as an `AsyncSequence` (see ``AffinitySession/outcomes(processInstanceKey:timeout:)``).
///
/// Each iteration is one subscription: it starts with `makeAsyncIterator()` and ends when the
/// iteration throws, is cancelled, or the iterator is dropped.
public struct OutcomeSequence: AsyncSequence, Sendable {
    /// Each element is one outcome.
    public typealias Element = ReceivedOutcome

    let session: AffinitySession
    let key: ProcessInstanceKey
    let timeout: Duration?

    /// Starts the subscription.
    public func makeAsyncIterator() -> Iterator {
        let lease: SubscriptionLease
        do {
            lease = SubscriptionLease(session: session, subscriber: try session.subscribe(key), failure: nil)
        } catch {
            lease = SubscriptionLease(session: session, subscriber: nil, failure: error)
        }
        return Iterator(lease: lease, key: key, timeout: timeout)
    }

    /// Iterates the outcomes; throws ``AffinityClientError`` (`timeout` with the key, `unavailable`,
    /// `forbidden`) or `CancellationError`, after which the subscription is gone.
    public struct Iterator: AsyncIteratorProtocol {
        let lease: SubscriptionLease
        let key: ProcessInstanceKey
        let timeout: Duration?

        /// The next outcome; nil once the subscription ended.
        public mutating func next() async throws -> ReceivedOutcome? {
            if let failure = lease.takeFailure() { throw failure }
            guard let subscriber = lease.subscriber else { return nil }
            do {
                return try await lease.session.nextOutcome(for: subscriber, key: key, timeout: timeout)
            } catch {
                lease.end()
                throw error
            }
        }
    }
}

/// Holds one subscription of an ``OutcomeSequence`` iteration; releases it when ended or dropped.
final class SubscriptionLease: Sendable {
    let session: AffinitySession
    private let state: Mutex<(subscriber: SubscriberID?, failure: AffinityClientError?)>

    init(session: AffinitySession, subscriber: SubscriberID?, failure: AffinityClientError?) {
        self.session = session
        self.state = Mutex((subscriber, failure))
    }

    var subscriber: SubscriberID? { state.withLock { $0.subscriber } }

    func takeFailure() -> AffinityClientError? {
        state.withLock { state in
            defer { state.failure = nil }
            return state.failure
        }
    }

    func end() {
        let subscriber = state.withLock { state in
            defer { state.subscriber = nil }
            return state.subscriber
        }
        if let subscriber { session.release(subscriber) }
    }

    deinit {
        end()
    }
}
