import NIOCore
import Testing

@testable import AffinityRedis

@Suite("Redis connection state machine")
struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionStateMachine<Int>
    let auth: RedisCommand = ["AUTH", "user", "secret"]
    let select: RedisCommand = ["SELECT", "2"]
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func at(_ milliseconds: Int64) -> NIODeadline { t0 + .milliseconds(milliseconds) }

    @Test func withoutHandshakeItIsReadyWhenActive() {
        var machine = Machine(handshake: [], endpoint: "e")
        #expect(machine.phase == .connecting)
        guard case .ready(let held) = machine.channelActive(handshakeDeadline: at(100)) else {
            Issue.record("expected ready")
            return
        }
        #expect(held.isEmpty)
        #expect(machine.phase == .ready)
    }

    @Test func requestsBeforeActiveAreHeldAndWrittenWhenReady() {
        var machine = Machine(handshake: [], endpoint: "e")
        #expect(isHold(machine.enqueue(1, deadline: at(500))))
        #expect(isHold(machine.enqueue(2, deadline: at(500))))
        guard case .ready(let held) = machine.channelActive(handshakeDeadline: at(100)) else {
            Issue.record("expected ready")
            return
        }
        #expect(held == [1, 2])
        #expect(machine.inFlightCount == 2)
        #expect(succeeded(machine.replyReceived(.integer(1))) == 1)
        #expect(succeeded(machine.replyReceived(.integer(2))) == 2)
    }

    @Test func handshakeWritesAuthAndSelectThenHoldsRequests() {
        var machine = Machine(handshake: [auth, select], endpoint: "e")
        guard case .writeHandshake(let commands) = machine.channelActive(handshakeDeadline: at(100)) else {
            Issue.record("expected handshake")
            return
        }
        #expect(commands == [auth, select])
        #expect(machine.phase == .handshaking)
        #expect(isHold(machine.enqueue(7, deadline: at(1000))))
        #expect(machine.heldCount == 1)
        guard case .none = machine.replyReceived(.simpleString("OK")) else {
            Issue.record("expected none after AUTH")
            return
        }
        guard case .handshakeCompleted(let held) = machine.replyReceived(.simpleString("OK")) else {
            Issue.record("expected handshake completion")
            return
        }
        #expect(held == [7])
        #expect(machine.phase == .ready)
        #expect(succeeded(machine.replyReceived(.bulkString(ByteBuffer(string: "x")))) == 7)
    }

    @Test func aFailedAuthFailsHeldRequestsAndCloses() {
        var machine = Machine(handshake: [auth, select], endpoint: "e")
        _ = machine.channelActive(handshakeDeadline: at(100))
        _ = machine.enqueue(3, deadline: at(1000))
        guard case .handshakeFailed(let error, let held) = machine.replyReceived(.error("WRONGPASS invalid")) else {
            Issue.record("expected handshake failure")
            return
        }
        #expect(error.code == .server)
        #expect(error.message.contains("WRONGPASS"))
        #expect(error.message.contains("AUTH"))
        #expect(held == [3])
        #expect(machine.phase == .closed)
        #expect(failure(machine.enqueue(4, deadline: at(1000)))?.code == .connection)
    }

    @Test func aFailedSelectFailsTheHandshake() {
        var machine = Machine(handshake: [auth, select], endpoint: "e")
        _ = machine.channelActive(handshakeDeadline: at(100))
        _ = machine.replyReceived(.simpleString("OK"))
        guard case .handshakeFailed(let error, _) = machine.replyReceived(.error("ERR DB index is out of range")) else {
            Issue.record("expected handshake failure")
            return
        }
        #expect(error.message.contains("SELECT"))
    }

    @Test func pipelinedRepliesArePairedInOrder() {
        var machine = ready()
        for request in 1...1000 {
            #expect(isWrite(machine.enqueue(request, deadline: at(1000))))
        }
        for request in 1...1000 {
            #expect(succeeded(machine.replyReceived(.integer(Int64(request)))) == request)
        }
        #expect(machine.inFlightCount == 0)
    }

    @Test func aReplyNobodyAskedForClosesTheConnection() {
        var machine = ready()
        guard case .unexpectedReply(let error) = machine.replyReceived(.simpleString("OK")) else {
            Issue.record("expected unexpectedReply")
            return
        }
        #expect(error.code == .protocol)
        #expect(machine.phase == .closed)
    }

    @Test func nothingExpiresBeforeItsDeadline() {
        var machine = ready()
        _ = machine.enqueue(1, deadline: at(100))
        guard case .none = machine.checkDeadlines(now: at(99)) else {
            Issue.record("nothing should expire")
            return
        }
        #expect(machine.phase == .ready)
    }

    @Test func aTimeoutFailsTheLateCommandAndRecyclesTheConnection() {
        var machine = ready()
        _ = machine.enqueue(1, deadline: at(200))
        _ = machine.enqueue(2, deadline: at(100))  // a shorter per-command deadline behind a longer one
        _ = machine.enqueue(3, deadline: at(300))
        guard
            case .timedOut(let expired, let others, let timeout, let connection, let duringHandshake) =
                machine.checkDeadlines(now: at(150))
        else {
            Issue.record("expected a timeout")
            return
        }
        #expect(expired == [2])
        #expect(others == [1, 3])
        #expect(timeout.code == .timeout)
        #expect(connection.code == .connection)
        #expect(!duringHandshake)
        #expect(machine.phase == .closed)
        #expect(machine.inFlightCount == 0)
        #expect(failure(machine.enqueue(4, deadline: at(1000))) != nil)
    }

    @Test func aSilentHandshakeTimesOut() {
        var machine = Machine(handshake: [auth], endpoint: "e")
        _ = machine.channelActive(handshakeDeadline: at(100))
        _ = machine.enqueue(9, deadline: at(5000))
        guard case .timedOut(let expired, let others, _, _, let duringHandshake) = machine.checkDeadlines(now: at(100))
        else {
            Issue.record("expected a handshake timeout")
            return
        }
        #expect(expired.isEmpty)
        #expect(others == [9])
        #expect(duringHandshake)
    }

    @Test func deadlinesAreNotCheckedWhileConnecting() {
        var machine = Machine(handshake: [], endpoint: "e")
        _ = machine.enqueue(1, deadline: at(10))
        guard case .none = machine.checkDeadlines(now: at(1000)) else {
            Issue.record("connecting is bounded by the connect timeout, not command deadlines")
            return
        }
    }

    @Test func gracefulCloseWaitsForRepliesInFlight() {
        var machine = ready()
        _ = machine.enqueue(1, deadline: at(1000))
        _ = machine.enqueue(2, deadline: at(1000))
        guard case .waitForReplies(let held, _) = machine.close() else {
            Issue.record("expected to wait")
            return
        }
        #expect(held.isEmpty)
        #expect(machine.phase == .closing)
        #expect(failure(machine.enqueue(3, deadline: at(1000)))?.message.contains("closing") == true)
        #expect(succeeded(machine.replyReceived(.integer(1))) == 1)
        guard case .succeedAndClose(let last, _) = machine.replyReceived(.integer(2)) else {
            Issue.record("expected the last reply to close")
            return
        }
        #expect(last == 2)
        #expect(machine.phase == .closed)
        guard case .none = machine.close() else {
            Issue.record("a second close does nothing")
            return
        }
    }

    @Test func gracefulCloseWhenIdleClosesAtOnce() {
        var machine = ready()
        guard case .closeNow(let held, _) = machine.close() else {
            Issue.record("expected closeNow")
            return
        }
        #expect(held.isEmpty)
        #expect(machine.phase == .closed)
    }

    @Test func closeDuringHandshakeFailsHeldRequests() {
        var machine = Machine(handshake: [auth], endpoint: "e")
        _ = machine.channelActive(handshakeDeadline: at(100))
        _ = machine.enqueue(5, deadline: at(1000))
        guard case .closeNow(let held, let error) = machine.close() else {
            Issue.record("expected closeNow")
            return
        }
        #expect(held == [5])
        #expect(error.code == .connection)
    }

    @Test func closeBeforeActiveMakesActivationClose() {
        var machine = Machine(handshake: [], endpoint: "e")
        _ = machine.close()
        guard case .close = machine.channelActive(handshakeDeadline: at(100)) else {
            Issue.record("expected close")
            return
        }
    }

    @Test func channelClosedFailsEverythingWithTheCause() {
        var machine = Machine(handshake: [auth], endpoint: "e")
        _ = machine.channelActive(handshakeDeadline: at(100))
        _ = machine.enqueue(1, deadline: at(1000))
        let (requests, error) = machine.channelClosed(
            cause: RedisError(code: .tls, message: "certificate verify failed"))
        #expect(requests == [1])
        #expect(error.code == .tls)
        #expect(machine.phase == .closed)

        var other = ready()
        _ = other.enqueue(1, deadline: at(1000))
        _ = other.enqueue(2, deadline: at(1000))
        let (failed, defaultError) = other.channelClosed(cause: nil)
        #expect(failed == [1, 2])
        #expect(defaultError.code == .connection)
        guard case .unexpectedReply = other.replyReceived(.integer(1)) else {
            Issue.record("replies after close are unexpected")
            return
        }
    }

    // MARK: helpers

    private func ready() -> Machine {
        var machine = Machine(handshake: [], endpoint: "e")
        _ = machine.channelActive(handshakeDeadline: at(100))
        return machine
    }

    private func isHold(_ action: Machine.EnqueueAction) -> Bool {
        if case .hold = action { true } else { false }
    }

    private func isWrite(_ action: Machine.EnqueueAction) -> Bool {
        if case .write = action { true } else { false }
    }

    private func failure(_ action: Machine.EnqueueAction) -> RedisError? {
        if case .fail(let error) = action { error } else { nil }
    }

    private func succeeded(_ action: Machine.ReplyAction) -> Int? {
        if case .succeed(let request, _) = action { request } else { nil }
    }
}
