import Synchronization

/// Bounds how many deliveries of one `DeliverStream` the peer server handles at once: the stream's reader
/// takes a slot before it starts a delivery and waits (so stops reading, which HTTP/2 flow control passes
/// back to the caller) while none is free; a delivery gives its slot back when it has answered.
///
/// Only one task (the stream's reader) may wait in ``acquire()`` at a time.
final class PeerDeliverySlots: Sendable {
    private struct State {
        var available: Int
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    /// Creates `limit` slots (at least one).
    init(limit: Int) {
        self.state = Mutex(State(available: max(1, limit)))
    }

    /// Takes a slot, waiting for one to be released when none is free.
    func acquire() async {
        let taken = self.state.withLock { state -> Bool in
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
        if taken { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let takenNow = self.state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiter = continuation
                return false
            }
            if takenNow { continuation.resume() }
        }
    }

    /// Gives `count` slots back.
    func release(_ count: Int) {
        for _ in 0..<max(0, count) { release() }
    }

    /// Gives a slot back (to the waiting reader, if there is one).
    func release() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.available += 1
            return nil
        }
        waiter?.resume()
    }
}
