import NIOCore

/// The I/O-free state machine of one Redis connection: handshake (`AUTH`, `SELECT`), the pipelined FIFO of
/// commands awaiting their replies with per-command deadlines, and closing.
///
/// Redis answers commands in the order it received them, so the machine pairs each reply with the oldest
/// command in flight. When a command misses its deadline the order can no longer be trusted (its reply may
/// still arrive), so the machine gives up on the connection: the late command fails with a timeout, every
/// other command in flight with a connection error, and the driver closes the channel. The channel handler
/// feeds it events and carries out the actions it returns; `Request` is whatever the driver needs to answer
/// a caller (a promise in production, a plain value in tests).
struct RedisConnectionStateMachine<Request> {
    /// Where the connection stands.
    enum Phase: Equatable {
        /// The channel is not active yet.
        case connecting
        /// `AUTH` / `SELECT` are in flight; user commands are held back until they succeed.
        case handshaking
        /// Commands flow.
        case ready
        /// A graceful close: no new commands, close once the commands in flight are answered.
        case closing
        /// Done; every later command fails at once.
        case closed
    }

    /// One entry of the reply FIFO.
    private enum Waiting {
        case handshake(RedisCommand)
        case request(Request)
    }

    private struct InFlight {
        var waiting: Waiting
        var deadline: NIODeadline
    }

    /// What the driver must do after ``channelActive(handshakeDeadline:)``.
    enum ActiveAction {
        /// Write these handshake commands (and flush); their replies are consumed by the machine.
        case writeHandshake([RedisCommand])
        /// No handshake needed: the connection is ready; write the held requests (already in the FIFO).
        case ready(heldRequests: [Request])
        /// The machine was closed before the channel became active: close it.
        case close
    }

    /// What the driver must do with a new request.
    enum EnqueueAction {
        /// Encode and write the request now; it waits for its reply in the FIFO.
        case write
        /// Keep it: it is written when the handshake completes (the machine holds it).
        case hold
        /// Fail it at once with this error.
        case fail(RedisError)
    }

    /// What the driver must do with a reply.
    enum ReplyAction {
        /// A handshake reply was fine; nothing to do yet.
        case none
        /// The handshake completed: report the connection ready and write the held requests (already in the
        /// FIFO, in order).
        case handshakeCompleted(heldRequests: [Request])
        /// The handshake failed (e.g. `WRONGPASS`): fail these held requests and close the channel.
        case handshakeFailed(RedisError, heldRequests: [Request])
        /// Complete this request with the reply.
        case succeed(Request, RedisReply)
        /// Complete this request with the reply, then close the channel (the graceful close is done).
        case succeedAndClose(Request, RedisReply)
        /// A reply arrived that nobody asked for: close the channel with this error.
        case unexpectedReply(RedisError)
    }

    /// What the driver must do when the deadline timer fires.
    enum DeadlineAction {
        /// Nothing has expired.
        case none
        /// Commands expired: fail `expired` with `timeout`, `others` with `connectionError`, close the channel.
        /// `duringHandshake` tells whether the handshake itself timed out.
        case timedOut(
            expired: [Request], others: [Request], timeout: RedisError, connectionError: RedisError,
            duringHandshake: Bool)
    }

    /// What the driver must do when asked to close gracefully.
    enum CloseAction {
        /// Close the channel now; fail these held requests with the error.
        case closeNow(failHeld: [Request], error: RedisError)
        /// Wait: the channel closes after the last reply (see ``ReplyAction/succeedAndClose(_:_:)``).
        case waitForReplies(failHeld: [Request], error: RedisError)
        /// Already closing or closed.
        case none
    }

    private(set) var phase: Phase = .connecting
    private var inFlight = CircularBuffer<InFlight>()
    private var held: [(request: Request, deadline: NIODeadline)] = []
    private let handshake: [RedisCommand]
    private let endpoint: String

    /// Creates the machine. `handshake` is the list of commands to send first (`AUTH`, `SELECT`), possibly
    /// empty; `endpoint` names the server in error messages.
    init(handshake: [RedisCommand], endpoint: String) {
        self.handshake = handshake
        self.endpoint = endpoint
    }

    /// Commands written and not yet answered (handshake included).
    var inFlightCount: Int { inFlight.count }

    /// Requests held back until the handshake completes.
    var heldCount: Int { held.count }

    /// The channel became active.
    mutating func channelActive(handshakeDeadline: NIODeadline) -> ActiveAction {
        guard phase == .connecting else { return .close }
        if handshake.isEmpty {
            phase = .ready
            return .ready(heldRequests: promoteHeld())
        }
        phase = .handshaking
        for command in handshake {
            inFlight.append(InFlight(waiting: .handshake(command), deadline: handshakeDeadline))
        }
        return .writeHandshake(handshake)
    }

    /// A caller wants `request` sent, answered by `deadline`.
    mutating func enqueue(_ request: Request, deadline: NIODeadline) -> EnqueueAction {
        switch phase {
        case .connecting, .handshaking:
            held.append((request, deadline))
            return .hold
        case .ready:
            inFlight.append(InFlight(waiting: .request(request), deadline: deadline))
            return .write
        case .closing:
            return .fail(RedisError(code: .connection, message: "the connection to \(endpoint) is closing"))
        case .closed:
            return .fail(RedisError(code: .connection, message: "the connection to \(endpoint) is closed"))
        }
    }

    /// A complete reply arrived.
    mutating func replyReceived(_ reply: RedisReply) -> ReplyAction {
        guard phase != .closed, let head = inFlight.popFirst() else {
            phase = .closed
            return .unexpectedReply(
                RedisError(code: .protocol, message: "\(endpoint) sent a reply no command was waiting for"))
        }
        switch head.waiting {
        case .handshake(let command):
            if case .error(let text) = reply {
                phase = .closed
                inFlight.removeAll()
                return .handshakeFailed(
                    RedisError(code: .server, message: "\(command.name) failed on \(endpoint): \(text)"),
                    heldRequests: releaseHeld())
            }
            if inFlight.contains(where: { if case .handshake = $0.waiting { true } else { false } }) {
                return .none
            }
            // Handshake entries exist only while handshaking: close() during the handshake closes at once.
            phase = .ready
            return .handshakeCompleted(heldRequests: promoteHeld())
        case .request(let request):
            if phase == .closing && inFlight.isEmpty {
                phase = .closed
                return .succeedAndClose(request, reply)
            }
            return .succeed(request, reply)
        }
    }

    /// The deadline timer fired at `now`.
    mutating func checkDeadlines(now: NIODeadline) -> DeadlineAction {
        guard phase != .closed, phase != .connecting else { return .none }
        guard inFlight.contains(where: { $0.deadline <= now }) || held.contains(where: { $0.deadline <= now })
        else { return .none }
        let duringHandshake = phase == .handshaking
        var expired: [Request] = []
        var others: [Request] = []
        for entry in inFlight {
            guard case .request(let request) = entry.waiting else { continue }
            if entry.deadline <= now { expired.append(request) } else { others.append(request) }
        }
        for entry in held {
            if entry.deadline <= now { expired.append(entry.request) } else { others.append(entry.request) }
        }
        inFlight.removeAll()
        held.removeAll()
        phase = .closed
        let what = duringHandshake ? "the handshake with" : "a command to"
        return .timedOut(
            expired: expired, others: others,
            timeout: RedisError(code: .timeout, message: "\(what) \(endpoint) got no reply in time"),
            connectionError: RedisError(
                code: .connection,
                message: "the connection to \(endpoint) was recycled after a command timed out"),
            duringHandshake: duringHandshake)
    }

    /// The owner asks for a graceful close.
    mutating func close() -> CloseAction {
        switch phase {
        case .connecting, .handshaking:
            phase = .closed
            inFlight.removeAll()
            return .closeNow(failHeld: releaseHeld(), error: closingError())
        case .ready:
            if inFlight.isEmpty {
                phase = .closed
                return .closeNow(failHeld: [], error: closingError())
            }
            phase = .closing
            return .waitForReplies(failHeld: [], error: closingError())
        case .closing, .closed:
            return .none
        }
    }

    /// The channel closed or failed: every request still waiting must fail with the returned error.
    mutating func channelClosed(cause: RedisError?) -> (requests: [Request], error: RedisError) {
        var requests: [Request] = []
        for entry in inFlight {
            if case .request(let request) = entry.waiting { requests.append(request) }
        }
        requests.append(contentsOf: releaseHeld())
        inFlight.removeAll()
        phase = .closed
        let error = cause ?? RedisError(code: .connection, message: "the connection to \(endpoint) closed")
        return (requests, error)
    }

    /// Moves the held requests, in order and with their deadlines, into the FIFO: the driver writes them now.
    private mutating func promoteHeld() -> [Request] {
        for entry in held {
            inFlight.append(InFlight(waiting: .request(entry.request), deadline: entry.deadline))
        }
        return releaseHeld()
    }

    private mutating func releaseHeld() -> [Request] {
        let requests = held.map(\.request)
        held.removeAll()
        return requests
    }

    private func closingError() -> RedisError {
        RedisError(code: .connection, message: "the connection to \(endpoint) is closing")
    }
}
