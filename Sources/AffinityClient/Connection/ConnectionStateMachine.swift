/// The connection lifecycle of a session or publisher, without I/O: which URL to try next, how long
/// to wait before it, and what state the connection is in.
///
/// The runtime feeds it events (attempt started, welcomed, failed, closed, drained, stopped) and asks
/// ``nextAttempt(random:)`` what to do; it never sleeps or touches a socket itself.
struct ConnectionStateMachine: Sendable {
    /// Where the connection is.
    enum State: Sendable, Hashable {
        /// Not started, or between attempts with no delay decided yet.
        case idle
        /// A connection attempt to `urls[urlIndex]` is under way (until `welcome`).
        case connecting(urlIndex: Int)
        /// `welcome` was received from `replica`.
        case connected(urlIndex: Int, replica: String)
        /// Waiting `delay` before trying `urls[urlIndex]`.
        case backingOff(urlIndex: Int, delay: Duration)
        /// The replica said `drain`; the next attempt goes to another URL at once.
        case draining(urlIndex: Int)
        /// Stopped for good (graceful shutdown).
        case stopped
    }

    /// What the runtime should do next.
    enum NextAttempt: Sendable, Hashable {
        /// Wait `after`, then connect to `urls[urlIndex]`.
        case connect(urlIndex: Int, after: Duration)
        /// Do not connect again.
        case stop
    }

    private(set) var state: State = .idle
    /// Failed attempts since the last `welcome`.
    private(set) var consecutiveFailures = 0
    private var currentIndex = 0
    private var reason: Reason = .initial
    let urlCount: Int
    let backoff: ReconnectBackoff

    private enum Reason { case initial, failed, closed, drained }

    init(urlCount: Int, backoff: ReconnectBackoff) {
        precondition(urlCount > 0, "at least one URL is required")  // enforced by the configuration
        self.urlCount = urlCount
        self.backoff = backoff
    }

    /// True while a welcomed connection is up.
    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// Decides the next attempt: the first URL at once initially; the next URL at once after a drain;
    /// after failures, each other URL once without delay, then exponential back-off with jitter; after
    /// an established connection closed, the next URL after a short jittered delay (no hot loop).
    mutating func nextAttempt(random: Double) -> NextAttempt {
        if case .stopped = state { return .stop }
        let delay: Duration
        switch reason {
        case .initial:
            delay = .zero
        case .drained:
            currentIndex = (currentIndex + 1) % urlCount
            delay = .zero
        case .closed:
            currentIndex = (currentIndex + 1) % urlCount
            delay = backoff.delay(afterFailures: 1, random: random)
        case .failed:
            currentIndex = (currentIndex + 1) % urlCount
            delay =
                consecutiveFailures < urlCount
                ? .zero : backoff.delay(afterFailures: consecutiveFailures - urlCount + 1, random: random)
        }
        state = delay == .zero ? .connecting(urlIndex: currentIndex) : .backingOff(urlIndex: currentIndex, delay: delay)
        return .connect(urlIndex: currentIndex, after: delay)
    }

    /// The delay is over and the socket is being opened.
    mutating func attemptStarted() {
        guard case .stopped = state else {
            state = .connecting(urlIndex: currentIndex)
            return
        }
    }

    /// `welcome` arrived: the connection is usable; the failure count starts over.
    mutating func welcomed(replica: String) {
        guard case .stopped = state else {
            state = .connected(urlIndex: currentIndex, replica: replica)
            consecutiveFailures = 0
            return
        }
    }

    /// The replica sent `drain`: leave it and go to another URL at once.
    mutating func drainReceived() {
        guard case .stopped = state else {
            state = .draining(urlIndex: currentIndex)
            reason = .drained
            return
        }
    }

    /// The connection ended (error, close, refused upgrade, handshake timeout).
    mutating func connectionEnded() {
        switch state {
        case .stopped:
            return
        case .draining:
            reason = .drained
        case .connected:
            reason = .closed
        case .idle, .connecting, .backingOff:
            consecutiveFailures += 1
            reason = .failed
        }
        state = .idle
    }

    /// Graceful shutdown: no further attempts.
    mutating func stop() {
        state = .stopped
    }
}
