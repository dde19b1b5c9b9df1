import AffinityProtocol
import Foundation
import Testing

@testable import AffinityPeer

@Suite("DeliverStream bookkeeping (no I/O)")
struct PeerDeliveryStreamStateTests {
    typealias State = PeerDeliveryStreamState<String, String>

    private func request(_ id: String) -> Affinity_Peer_V1_DeliverRequest {
        var request = Affinity_Peer_V1_DeliverRequest()
        request.id = id
        return request
    }

    private func response(
        _ id: UInt64, _ status: Affinity_Peer_V1_DeliverResponse.Status = .delivered
    )
        -> Affinity_Peer_V1_DeliverResponse
    {
        var response = Affinity_Peer_V1_DeliverResponse()
        response.requestID = id
        response.status = status
        return response
    }

    /// Enqueues and returns the id, the start flag and the woken writer's batch.
    private func enqueue(
        _ state: inout State, _ name: String
    )
        -> (id: UInt64, start: Bool, wake: (writer: String, batch: [Affinity_Peer_V1_DeliverRequest])?)?
    {
        guard case .enqueued(let id, let start, let wake) = state.enqueue(self.request(name)) else {
            return nil
        }
        return (id, start, wake)
    }

    @Test("the first request starts the stream; ids are unique and never 0; the writer takes the queue in one batch")
    func enqueueAndBatch() throws {
        var state = State()
        let first = try #require(self.enqueue(&state, "a"))
        #expect(first.start)
        #expect(first.id != 0)
        let second = try #require(self.enqueue(&state, "b"))
        #expect(!second.start)
        #expect(second.id != first.id)
        #expect(state.isStreamOpen)
        guard case .write(let batch) = state.takeBatch(writer: "w") else {
            Issue.record("expected a batch")
            return
        }
        #expect(batch.map(\.id) == ["a", "b"])
        #expect(batch.map(\.requestID) == [first.id, second.id])
        // Nothing queued: the writer waits, and the next enqueue hands it the request directly.
        guard case .wait = state.takeBatch(writer: "w") else {
            Issue.record("expected the writer to wait")
            return
        }
        let third = try #require(self.enqueue(&state, "c"))
        #expect(third.wake?.writer == "w")
        #expect(third.wake?.batch.map(\.id) == ["c"])
        #expect(state.releaseWriter() == nil)
    }

    @Test("answers complete their own request, in any order, before or after the caller attached")
    func outOfOrderAnswers() throws {
        var state = State()
        let a = try #require(self.enqueue(&state, "a")).id
        let b = try #require(self.enqueue(&state, "b")).id
        let c = try #require(self.enqueue(&state, "c")).id
        #expect(state.attach(a, waiter: "caller-a") == nil)
        #expect(state.attach(b, waiter: "caller-b") == nil)
        // c is answered before its caller attached: the answer waits for it.
        guard case .stored = state.complete(c, with: .response(self.response(c, .parked))) else {
            Issue.record("expected the answer to be stored")
            return
        }
        guard case .resume(let waiterB, .response(let answerB)) = state.complete(b, with: .response(self.response(b)))
        else {
            Issue.record("expected b's caller to be resumed")
            return
        }
        #expect(waiterB == "caller-b")
        #expect(answerB.requestID == b)
        guard case .response(let answerC) = state.attach(c, waiter: "caller-c") else {
            Issue.record("expected c's stored answer")
            return
        }
        #expect(answerC.status == .parked)
        guard case .resume(let waiterA, _) = state.complete(a, with: .response(self.response(a))) else {
            Issue.record("expected a's caller to be resumed")
            return
        }
        #expect(waiterA == "caller-a")
        #expect(state.openRequestCount == 0)
    }

    @Test("the first completion wins; a late or unknown answer is reported unknown")
    func firstCompletionWins() throws {
        var state = State()
        let a = try #require(self.enqueue(&state, "a")).id
        #expect(state.attach(a, waiter: "caller-a") == nil)
        let deadline = PeerDeliveryError(code: .deadlineExceeded, message: "late")
        guard case .resume(_, .failure(let error)) = state.complete(a, with: .failure(deadline)) else {
            Issue.record("expected the deadline to resume the caller")
            return
        }
        #expect(error.code == .deadlineExceeded)
        guard case .unknown = state.complete(a, with: .response(self.response(a))) else {
            Issue.record("a late answer must be unknown")
            return
        }
        guard case .unknown = state.complete(999, with: .response(self.response(999))) else {
            Issue.record("an id never handed out must be unknown")
            return
        }
        guard case .failure = state.attach(999, waiter: "stranger") else {
            Issue.record("attaching to an id never handed out must fail, not hang")
            return
        }
    }

    @Test("the end of a stream fails every open request with its classification; the next request starts a new one")
    func streamEndFailsPending() throws {
        var state = State()
        let a = try #require(self.enqueue(&state, "a")).id
        let b = try #require(self.enqueue(&state, "b")).id
        _ = state.takeBatch(writer: "w")
        #expect(state.attach(a, waiter: "caller-a") == nil)
        let lost = PeerDeliveryError(code: .unreachable, message: "connection lost")
        let (waiters, writer) = state.streamEnded(with: .failure(lost), )
        #expect(waiters == ["caller-a"])
        #expect(writer == nil)
        // b's caller had not attached yet: it finds the failure.
        guard case .failure(let error) = state.attach(b, waiter: "caller-b") else {
            Issue.record("expected b to fail")
            return
        }
        #expect(error.code == .unreachable)
        #expect(!state.isStreamOpen)
        let next = try #require(self.enqueue(&state, "c"))
        #expect(next.start)
        #expect(next.id > b)
    }

    @Test(
        "retiring lets queued requests be written, refuses later ones (the pool looks up the new connection), and retires for good"
    )
    func retire() throws {
        var state = State()
        _ = try #require(self.enqueue(&state, "a"))
        let (writer, open) = state.retire()
        #expect(open)
        #expect(writer == nil)
        guard case .connectionRetired = state.enqueue(self.request("b")) else {
            Issue.record("expected a refusal on a closing stream")
            return
        }
        guard case .write(let batch) = state.takeBatch(writer: "w") else {
            Issue.record("the queued request is still written")
            return
        }
        #expect(batch.map(\.id) == ["a"])
        guard case .finish = state.takeBatch(writer: "w") else {
            Issue.record("then the writer finishes")
            return
        }
        _ = state.streamEnded(
            with: .failure(PeerDeliveryError(code: .unreachable, message: "closed")), )
        guard case .connectionRetired = state.enqueue(self.request("c")) else {
            Issue.record("a retired stream never starts again")
            return
        }
        // Retiring without a stream: nothing to wait for.
        var idle = State()
        #expect(idle.retire().streamOpen == false)
    }

    @Test("a waiting writer is released by retire, by the peer's drain notice and by the end of the stream")
    func writerRelease() throws {
        var state = State()
        _ = try #require(self.enqueue(&state, "a"))
        _ = state.takeBatch(writer: "w1")
        guard case .wait = state.takeBatch(writer: "w1") else {
            Issue.record("expected the writer to wait")
            return
        }
        #expect(state.peerDraining() == "w1")
        guard case .peerDraining = state.enqueue(self.request("b")) else {
            Issue.record("a draining stream takes no new requests")
            return
        }
        _ = state.streamEnded(
            with: .failure(PeerDeliveryError(code: .unreachable, message: "closed")), )
        // After the drain the next request opens a new stream (the peer's replacement).
        let next = try #require(self.enqueue(&state, "c"))
        #expect(next.start)
        guard case .write = state.takeBatch(writer: "w2") else {
            Issue.record("expected c")
            return
        }
        guard case .wait = state.takeBatch(writer: "w2") else {
            Issue.record("expected the writer to wait")
            return
        }
        #expect(state.retire().writer == "w2")
    }

    @Test("a writer whose task was cancelled never waits; the next stream's writer may")
    func cancelledWriter() throws {
        var state = State()
        _ = try #require(self.enqueue(&state, "a"))
        #expect(state.cancelWriter() == nil)
        guard case .write = state.takeBatch(writer: "w1") else {
            Issue.record("queued requests are still handed out")
            return
        }
        guard case .finish = state.takeBatch(writer: "w1") else {
            Issue.record("a cancelled writer must not wait")
            return
        }
        _ = state.streamEnded(
            with: .failure(PeerDeliveryError(code: .unreachable, message: "closed")), )
        #expect(try #require(self.enqueue(&state, "b")).start)
        _ = state.takeBatch(writer: "w2")
        guard case .wait = state.takeBatch(writer: "w2") else {
            Issue.record("the new stream's writer waits")
            return
        }
    }
}
