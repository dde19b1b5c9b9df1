import AffinityProtocol
import AffinityTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import MetricsTestKit
import Synchronization
import Testing

@testable import AffinityPeer

@Suite("Forwards multiplexed on one DeliverStream per peer")
struct PeerDeliveryStreamTests {
    @Test("many concurrent forwards share one stream and get their own answers, out of order")
    func concurrentOutOfOrder() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let log = CompletionLog()
            // Later outcomes finish first; each outcome's answer depends on its number.
            let handler = ClosureHandler { outcome, _ in
                let number = Int(outcome.id.dropFirst("job-".count)) ?? 0
                try await Task.sleep(for: .milliseconds(5 * (200 - number)))
                log.record(outcome.id)
                switch number % 3 {
                case 0: return .delivered
                case 1: return .parked
                default: return .notOwner(owner: "replica-\(number)")
                }
            }
            let clientMetrics = TestMetrics()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { server, address async throws in
                try await withPeerPool(credentials: clientCredentials, metrics: clientMetrics) { pool async throws in
                    let answers = try await withThrowingTaskGroup(of: (Int, ForwardedDeliveryStatus).self) { group in
                        for number in 0..<200 {
                            group.addTask {
                                (
                                    number,
                                    try await pool.deliver(sampleOutcome(number), to: address, timeout: .seconds(10))
                                )
                            }
                        }
                        return try await group.reduce(into: [Int: ForwardedDeliveryStatus]()) { $0[$1.0] = $1.1 }
                    }
                    #expect(answers.count == 200)
                    for (number, status) in answers {
                        switch number % 3 {
                        case 0: #expect(status == .delivered, "job-\(number)")
                        case 1: #expect(status == .parked, "job-\(number)")
                        default: #expect(status == .notOwner(owner: "replica-\(number)"), "job-\(number)")
                        }
                    }
                    #expect(server.acceptedConnectionCount == 1)
                    #expect(pool.openedConnectionCount == 1)
                }
            }
            // The handler finished them in another order than they were sent: the answers came back out of order.
            let order = log.order
            #expect(order.count == 200)
            #expect(order.first != "job-0")
            #expect(order != (0..<200).map { "job-\($0)" })
            #expect(clientMetrics.counterTotal(label: "affinity_peer_streams_opened_total") == 1)
        }
    }

    @Test("each forward has its own deadline: a slow one fails in time, the others on the stream are answered")
    func deadlinePerRequest() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let cancelled = CompletionLog()
            let handler = ClosureHandler { outcome, _ in
                if outcome.id == "job-0" {
                    do {
                        try await Task.sleep(for: .seconds(5))
                    } catch {
                        cancelled.record(outcome.id)
                        throw error
                    }
                }
                return .delivered
            }
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    _ = try await pool.identify(address)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            let start = ContinuousClock.now
                            let error = await #expect(throws: PeerDeliveryError.self) {
                                try await pool.deliver(
                                    sampleOutcome(0), to: address, deadline: .now + .milliseconds(300))
                            }
                            let elapsed = ContinuousClock.now - start
                            #expect(error?.code == .deadlineExceeded)
                            #expect(elapsed < .seconds(2), "took \(elapsed)")
                        }
                        for number in 1..<20 {
                            group.addTask {
                                let status = try await pool.deliver(sampleOutcome(number), to: address)
                                #expect(status == .delivered)
                            }
                        }
                        try await group.waitForAll()
                    }
                    // The stream survived the expired request.
                    #expect(try await pool.deliver(sampleOutcome(30), to: address) == .delivered)
                    // The owner stopped waiting too: the caller's timeout travelled with the request.
                    var polls = 0
                    while cancelled.order.isEmpty && polls < 100 {
                        polls += 1
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    #expect(cancelled.order == ["job-0"])
                    let late = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(31), to: address, deadline: .now - .milliseconds(1))
                    }
                    #expect(late?.code == .deadlineExceeded)
                }
            }
        }
    }

    @Test("a lost connection fails every open forward at once as unreachable, and the next forward reconnects")
    func connectionLoss() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let arrived = CompletionLog()
            let handler = ClosureHandler { outcome, _ in
                arrived.record(outcome.id)
                try await Task.sleep(for: .seconds(30))
                return .delivered
            }
            let server = try PeerServer(
                configuration: PeerServerConfiguration(host: "127.0.0.1", port: 0, replicaID: "replica-1"),
                credentials: serverCredentials,
                handler: handler,
                logger: makeTestLogger("peer.server")
            )
            try await withPeerPool(credentials: clientCredentials) { pool async throws in
                let start = ContinuousClock.now
                let codes = try await withThrowingTaskGroup(of: [PeerDeliveryError.Code?].self) { group in
                    // The server, stopped abruptly (its task cancelled, no drain) once 10 forwards are open.
                    group.addTask {
                        try await withThrowingTaskGroup(of: Void.self) { serverGroup in
                            serverGroup.addTask { try await server.run() }
                            while arrived.order.count < 10 {
                                try await Task.sleep(for: .milliseconds(10))
                            }
                            serverGroup.cancelAll()
                            while let _ = try? await serverGroup.next() {}
                        }
                        return []
                    }
                    let port = try await server.listeningPort()
                    let address = PeerAddress(host: "127.0.0.1", port: port)
                    group.addTask {
                        try await withThrowingTaskGroup(of: PeerDeliveryError.Code?.self) { forwards in
                            for number in 0..<10 {
                                forwards.addTask {
                                    do {
                                        _ = try await pool.deliver(
                                            sampleOutcome(number), to: address, timeout: .seconds(20))
                                        return nil
                                    } catch let error as PeerDeliveryError {
                                        return error.code
                                    } catch {
                                        Issue.record("unexpected error \(error)")
                                        return nil
                                    }
                                }
                            }
                            return try await forwards.reduce(into: []) { $0.append($1) }
                        }
                    }
                    return try await group.reduce(into: []) { $0.append(contentsOf: $1) }
                }
                let elapsed = ContinuousClock.now - start
                #expect(codes.count == 10)
                #expect(codes.allSatisfy { $0 == .unreachable }, "\(codes)")
                #expect(elapsed < .seconds(10), "took \(elapsed)")
            }
        }
    }

    @Test("stream requests refused by the server (id 0, an id still open, malformed) keep the stream open")
    func refusedStreamRequests() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            let caller = try pki.issue("replica-3", by: ca)
            let handler = ClosureHandler { outcome, _ in
                if outcome.id == "job-slow" { try await Task.sleep(for: .milliseconds(500)) }
                return .delivered
            }
            try await withPeerServer(credentials: serverCredentials, handler: handler) {
                _, address async throws in
                try await withRawPeerClient(identity: caller, caPath: ca.certificatePath, address: address) {
                    client async throws in
                    let key = "2251799813685249"
                    let object = Data(#"{"ok":true}"#.utf8)
                    let requests = [
                        deliverRequest(1, id: "job-slow", key: key, variables: object),  // open for 500 ms
                        deliverRequest(0, id: "job-1", key: key, variables: object),  // id 0
                        deliverRequest(1, id: "job-1", key: key, variables: object),  // id 1 is still open
                        deliverRequest(2, id: "job-2", key: "not-a-key", variables: object),
                        deliverRequest(3, id: "job-3", key: key, variables: object, origin: ""),
                        deliverRequest(4, id: "job-4", key: key, variables: object),
                    ]
                    let answers = try await Affinity_Peer_V1_PeerDelivery.Client(wrapping: client).deliverStream(
                        requestProducer: { writer in
                            try await writer.write(contentsOf: requests)
                        },
                        onResponse: { response in
                            try await response.messages.reduce(into: [Affinity_Peer_V1_DeliverResponse]()) {
                                $0.append($1)
                            }
                        }
                    )
                    #expect(answers.count == 6)
                    let refusals = answers.filter { $0.failure != .none }
                    #expect(refusals.map(\.requestID).sorted() == [0, 1, 2, 3])
                    #expect(refusals.first { $0.requestID == 0 }?.failure == .invalidArgument)
                    #expect(refusals.first { $0.requestID == 1 }?.failureMessage.contains("already open") == true)
                    #expect(refusals.first { $0.requestID == 2 }?.failure == .invalidArgument)
                    #expect(refusals.first { $0.requestID == 3 }?.failure == .invalidArgument)
                    #expect(refusals.first { $0.requestID == 3 }?.failureMessage.contains("origin_replica") == true)
                    let delivered = answers.filter { $0.failure == .none }
                    #expect(Set(delivered.map(\.requestID)) == [1, 4])
                    #expect(delivered.allSatisfy { $0.status == .delivered && $0.replica == "replica-server" })
                    // Answers come in completion order: request 4 before the slow request 1.
                    #expect(delivered.map(\.requestID) == [4, 1])
                }
            }
        }
    }

    @Test("a broken or oversized stream message ends that stream with a clear error; the server keeps serving")
    func brokenStreamMessages() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            let callerIdentity = try pki.issue("replica-3", by: ca)
            let clientCredentials = try makeCredentials(callerIdentity, trusting: ca.certificatePath)
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler, maxRequestBytes: 64 * 1024) {
                _, address async throws in
                try await withRawPeerClient(identity: callerIdentity, caPath: ca.certificatePath, address: address) {
                    client async throws in
                    // Not a DeliverRequest: field 1 claims 100 bytes, 3 follow.
                    let garbage: [UInt8] = [0x0A, 0x64, 0x01, 0x02, 0x03]
                    // Larger than the server's 64 KiB limit.
                    let huge = [UInt8](repeating: 0x20, count: 200 * 1024)
                    for message in [garbage, huge] {
                        let request = StreamingClientRequest<[UInt8]>(producer: { writer in
                            try await writer.write(message)
                            try await Task.sleep(for: .seconds(5))
                        })
                        var options = CallOptions.defaults
                        options.timeout = .seconds(10)
                        let error = await #expect(throws: RPCError.self) {
                            try await client.bidirectionalStreaming(
                                request: request,
                                descriptor: Affinity_Peer_V1_PeerDelivery.Method.DeliverStream.descriptor,
                                serializer: RawBytesSerializer(),
                                deserializer: ProtobufDeserializer<Affinity_Peer_V1_DeliverResponse>(),
                                options: options
                            ) { response in
                                try await response.messages.reduce(0) { count, _ in count + 1 }
                            }
                        }
                        #expect(
                            error?.code == .invalidArgument || error?.code == .resourceExhausted
                                || error?.code == .internalError || error?.code == .unavailable,
                            "\(String(describing: error))")
                    }
                }
                // The server is unharmed: a normal caller forwards over a new stream.
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    #expect(try await pool.deliver(sampleOutcome(1), to: address) == .delivered)
                }
            }
            #expect(await handler.outcomes.map(\.id) == ["job-1"])
        }
    }

    @Test("a stream that breaks tells the handler which outcomes it answered delivered; a clean end tells nothing")
    func brokenStreamReportsItsDeliveredAnswers() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            let caller = try pki.issue("replica-3", by: ca)
            let handler = RecordingHandler { outcome in outcome.id == "job-parked" ? .parked : .delivered }
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                try await withRawPeerClient(identity: caller, caPath: ca.certificatePath, address: address) {
                    client async throws in
                    let key = "2251799813685249"
                    let object = Data(#"{"ok":true}"#.utf8)
                    let peer = Affinity_Peer_V1_PeerDelivery.Client(wrapping: client)
                    // a stream that ends cleanly: its caller had every answer
                    let clean = try await peer.deliverStream(
                        requestProducer: { writer in
                            try await writer.write(deliverRequest(1, id: "job-clean", key: key, variables: object))
                        },
                        onResponse: { response in try await response.messages.reduce(into: 0) { count, _ in count += 1 }
                        }
                    )
                    #expect(clean == 1)
                    // a stream its caller breaks once the three answers arrived
                    struct CallerBrokeTheStream: Error {}
                    let answered = Mutex(0)
                    await #expect(throws: (any Error).self) {
                        try await peer.deliverStream(
                            requestProducer: { writer in
                                try await writer.write(contentsOf: [
                                    deliverRequest(1, id: "job-1", key: key, variables: object),
                                    deliverRequest(2, id: "job-parked", key: key, variables: object),
                                    deliverRequest(3, id: "job-2", key: key, variables: object),
                                ])
                                while answered.withLock({ $0 }) < 3 { try await Task.sleep(for: .milliseconds(10)) }
                                throw CallerBrokeTheStream()
                            },
                            onResponse: { response in
                                for try await _ in response.messages { answered.withLock { $0 += 1 } }
                            }
                        )
                    }
                    let deadline = ContinuousClock.now + .seconds(10)
                    while await handler.possiblyLostAnswers.isEmpty && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    let reports = await handler.possiblyLostAnswers
                    #expect(reports.count == 1, "\(reports)")
                    let instance = ProcessInstanceKey(key)!
                    #expect(
                        Set(reports.first ?? [])
                            == [
                                PeerDeliveredOutcome(key: instance, id: "job-1"),
                                PeerDeliveredOutcome(key: instance, id: "job-2"),
                            ])
                }
            }
        }
    }

    @Test("the delivered answers a stream remembers are bounded by time and by count, oldest forgotten first")
    func deliveredAnswerMemoryIsBounded() {
        let key = ProcessInstanceKey(2_251_799_813_685_249)!
        let start = ContinuousClock.now
        let answers = PeerDeliveredAnswers(window: .seconds(30), limit: 3)
        for number in 0..<5 {
            answers.record(PeerDeliveredOutcome(key: key, id: "job-\(number)"), now: start + .seconds(number))
        }
        // the limit: the latest three
        #expect(answers.takeRecent(now: start + .seconds(5)).map(\.id) == ["job-2", "job-3", "job-4"])
        // taking forgets them
        #expect(answers.takeRecent(now: start + .seconds(5)).isEmpty)
        // the window: an answer older than 30 s is forgotten, whether at the next record or at the take
        for number in 0..<3 {
            answers.record(PeerDeliveredOutcome(key: key, id: "late-\(number)"), now: start + .seconds(20 * number))
        }
        #expect(answers.takeRecent(now: start + .seconds(45)).map(\.id) == ["late-1", "late-2"])
        // many answers within the window, a limit that is not reached: all kept, in order
        let many = PeerDeliveredAnswers(window: .seconds(30), limit: 10_000)
        for number in 0..<5_000 {
            many.record(PeerDeliveredOutcome(key: key, id: "m-\(number)"), now: start + .milliseconds(number))
        }
        #expect(many.takeRecent(now: start + .seconds(10)).map(\.id) == (0..<5_000).map { "m-\($0)" })
    }

    @Test("a delivered answer after the forward's deadline is handed to lateDelivered; a late parked one is not")
    func lateDeliveredAnswers() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverIdentity = try pki.issue("replica-1", by: ca)
            let clientCredentials = try makeCredentials(
                try pki.issue("replica-3", by: ca), trusting: ca.certificatePath)
            let late = Mutex<[PeerDeliveredOutcome]>([])
            try await withScriptedPeerServer(
                identity: serverIdentity, caPath: ca.certificatePath,
                service: LateAnswersService(delay: .milliseconds(300))
            ) { address async throws in
                try await withPeerPool(
                    credentials: clientCredentials, lateDelivered: { outcome in late.withLock { $0.append(outcome) } }
                ) { pool async throws in
                    for outcome in [sampleOutcome(1), sampleOutcome(2, id: "parked-2")] {
                        let error = await #expect(throws: PeerDeliveryError.self) {
                            try await pool.deliver(outcome, to: address, timeout: .milliseconds(100))
                        }
                        #expect(error?.code == .deadlineExceeded)
                    }
                    // answered in time: not late
                    #expect(try await pool.deliver(sampleOutcome(3, id: "fast-3"), to: address) == .delivered)
                    let deadline = ContinuousClock.now + .seconds(5)
                    while late.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    // the late parked answer has come too by now
                    try await Task.sleep(for: .milliseconds(500))
                    let key = sampleOutcome(1).key
                    #expect(late.withLock { $0 } == [PeerDeliveredOutcome(key: key, id: "job-1")])
                }
            }
        }
    }

    @Test("the forwards whose deadline passed are remembered for a late answer, bounded by count and by age")
    func timedOutForwardsAreBounded() {
        let key = ProcessInstanceKey(2_251_799_813_685_249)!
        func outcome(_ id: UInt64) -> PeerDeliveredOutcome { PeerDeliveredOutcome(key: key, id: "job-\(id)") }
        let start = ContinuousClock.now
        var forwards = PeerTimedOutForwards()
        let count = UInt64(PeerTimedOutForwards.limit + 10)
        for id in 0..<count {
            forwards.remember(id, outcome(id), now: start + .milliseconds(Int64(id)))
        }
        let now = start + .seconds(2)
        // beyond the limit, the oldest were forgotten
        #expect((0..<10).allSatisfy { forwards.take($0, now: now) == nil })
        #expect(forwards.take(10, now: now) == outcome(10))
        #expect(forwards.take(count - 1, now: now) == outcome(count - 1))
        // taking forgets
        #expect(forwards.take(10, now: now) == nil)
        // older than the lifetime: forgotten
        #expect(forwards.take(500, now: start + PeerTimedOutForwards.lifetime + .seconds(1)) == nil)
        #expect(forwards.take(501, now: now) == outcome(501))
    }

    @Test("the timed-out forwards' memory stays bounded however many come and go, and keeps the last ones")
    func timedOutForwardsMemoryStaysBounded() {
        let key = ProcessInstanceKey(2_251_799_813_685_249)!
        func outcome(_ id: UInt64) -> PeerDeliveredOutcome { PeerDeliveredOutcome(key: key, id: "job-\(id)") }
        let start = ContinuousClock.now
        var forwards = PeerTimedOutForwards()
        // 100,000 deadlines pass within the lifetime; every other one gets its late answer at once
        for id in UInt64(0)..<100_000 {
            let now = start + .microseconds(Int64(id))
            forwards.remember(id, outcome(id), now: now)
            if id % 2 == 0 { #expect(forwards.take(id, now: now) == outcome(id)) }
            #expect(forwards.storedEntries <= PeerTimedOutForwards.limit)
        }
        let now = start + .seconds(1)
        #expect(forwards.take(99_999, now: now) == outcome(99_999))
        #expect(forwards.take(UInt64(100_000 - PeerTimedOutForwards.limit + 1), now: now) != nil)
        #expect(forwards.take(UInt64(100_000 - PeerTimedOutForwards.limit - 1), now: now) == nil)
        // past the lifetime, the next deadline clears the rest
        forwards.remember(200_000, outcome(200_000), now: start + PeerTimedOutForwards.lifetime + .seconds(2))
        #expect(forwards.storedEntries == 1)
    }

    @Test("answers for ids the caller never sent are dropped; every forward gets its own answer")
    func unknownRequestIDs() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverIdentity = try pki.issue("replica-1", by: ca)
            let clientCredentials = try makeCredentials(
                try pki.issue("replica-3", by: ca), trusting: ca.certificatePath)
            try await withScriptedPeerServer(
                identity: serverIdentity, caPath: ca.certificatePath, service: StrayAnswersService()
            ) { address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    for number in 0..<5 {
                        #expect(try await pool.deliver(sampleOutcome(number), to: address) == .parked)
                    }
                    let statuses = try await withThrowingTaskGroup(of: ForwardedDeliveryStatus.self) { group in
                        for number in 5..<50 {
                            group.addTask { try await pool.deliver(sampleOutcome(number), to: address) }
                        }
                        return try await group.reduce(into: [ForwardedDeliveryStatus]()) { $0.append($1) }
                    }
                    #expect(statuses.count == 45)
                    #expect(statuses.allSatisfy { $0 == .parked })
                }
            }
        }
    }

    @Test("a server shutting down drains its streams: open forwards are answered, later ones reconnect")
    func serverDrain() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let handler = RecordingHandler(delay: .milliseconds(300))
            try await withPeerPool(credentials: clientCredentials) { pool async throws in
                let (address, shutdownStart) = try await withPeerServer(
                    credentials: serverCredentials, handler: handler
                ) { _, address async throws in
                    #expect(try await pool.deliver(sampleOutcome(1), to: address) == .delivered)
                    return (address, ContinuousClock.now)
                }
                // The graceful shutdown did not wait for the stream the caller would have kept open (without the
                // drain notice, the fixture's service group gives up after 10 s and cancels the server).
                let shutdown = ContinuousClock.now - shutdownStart
                #expect(shutdown < .seconds(8), "shutdown took \(shutdown)")
                let down = await #expect(throws: PeerDeliveryError.self) {
                    try await pool.deliver(sampleOutcome(2), to: address, timeout: .seconds(3))
                }
                #expect(down?.code == .refused || down?.code == .unreachable, "\(String(describing: down))")
            }
        }
    }
}
