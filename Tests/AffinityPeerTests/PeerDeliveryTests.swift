import AffinityProtocol
import AffinityTestSupport
import Foundation
import GRPCCore
import Testing

@testable import AffinityPeer

@Suite("Peer delivery over mutual TLS")
struct PeerDeliveryTests {
    @Test("an outcome makes the round trip and the handler sees the caller's certificate")
    func roundTrip() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    let outcome = sampleOutcome(7)
                    let status = try await pool.deliver(outcome, to: address, timeout: .seconds(5))
                    #expect(status == .delivered)
                    #expect(try await pool.identify(address).replicaID == "replica-server")
                }
            }
            let received = await handler.outcomes
            #expect(received == [sampleOutcome(7)])
            let caller = try #require(await handler.callers.first)
            #expect(caller.certificateSubject?.contains("CN=replica-3") == true)
            #expect(caller.remoteAddress.contains("127.0.0.1"))
        }
    }

    @Test("parked, not-owner and handler failures reach the caller")
    func statuses() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            struct StoreDown: Error {}
            let handler = RecordingHandler { outcome in
                switch outcome.id {
                case "job-1": return .parked
                case "job-2": return .notOwner(owner: "replica-2")
                case "job-3": return .notOwner(owner: nil)
                default: throw StoreDown()
                }
            }
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    #expect(try await pool.deliver(sampleOutcome(1), to: address) == .parked)
                    #expect(try await pool.deliver(sampleOutcome(2), to: address) == .notOwner(owner: "replica-2"))
                    #expect(try await pool.deliver(sampleOutcome(3), to: address) == .notOwner(owner: nil))
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(4), to: address)
                    }
                    #expect(error?.code == .failed)
                }
            }
        }
    }

    @Test("malformed requests are rejected before the handler")
    func rejectedRequests() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let serverCredentials = try makeCredentials(
                try pki.issue("replica-1", by: ca), trusting: ca.certificatePath)
            let caller = try pki.issue("replica-3", by: ca)
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) {
                _, address async throws in
                // The pool sends only an `Outcome`, which cannot be malformed; a peer that is not this code can
                // send anything, so the requests are written by hand.
                try await withRawPeerClient(identity: caller, caPath: ca.certificatePath, address: address) {
                    client async throws in
                    let key = "2251799813685249"
                    let object = Data(#"{"n":1}"#.utf8)
                    let requests = [
                        deliverRequest(1, id: "job-1", key: "12a", variables: object),
                        deliverRequest(2, id: "job-2", key: key, variables: Data("[1,2]".utf8)),
                        deliverRequest(3, id: "", key: key, variables: object),
                        deliverRequest(4, id: String(repeating: "i", count: 257), key: key, variables: object),
                        // passes the envelope check (braces at both ends), not the JSON scanner
                        deliverRequest(5, id: "job-5", key: key, variables: Data(#"{"n":}"#.utf8)),
                        deliverRequest(
                            6, id: "job-6" + String(repeating: "i", count: 250), key: key, variables: object),
                    ]
                    let answers = try await Affinity_Peer_V1_PeerDelivery.Client(wrapping: client).deliverStream(
                        requestProducer: { writer in try await writer.write(contentsOf: requests) },
                        onResponse: { response in
                            try await response.messages.reduce(into: [Affinity_Peer_V1_DeliverResponse]()) {
                                $0.append($1)
                            }
                        }
                    )
                    let refused = answers.filter { $0.failure == .invalidArgument }.map(\.requestID)
                    #expect(refused.sorted() == [1, 2, 3, 4, 5], "\(answers)")
                    #expect(answers.filter { $0.status == .delivered }.map(\.requestID) == [6])
                }
            }
            #expect(await handler.outcomes.map(\.id) == ["job-6" + String(repeating: "i", count: 250)])
        }
    }

    @Test("a slow handler makes the forward fail with deadline exceeded, in time")
    func deadlineExceeded() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let handler = RecordingHandler(delay: .seconds(3))
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    // Warm the connection up so that the deadline measures the handler only.
                    _ = try await pool.identify(address)
                    let start = ContinuousClock.now
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(), to: address, deadline: .now + .milliseconds(300))
                    }
                    let elapsed = ContinuousClock.now - start
                    #expect(error?.code == .deadlineExceeded)
                    #expect(elapsed < .seconds(2), "took \(elapsed)")
                    let late = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(), to: address, deadline: .now - .milliseconds(1))
                    }
                    #expect(late?.code == .deadlineExceeded)
                    // The owner stops waiting too: its handler task is cancelled when the deadline passes.
                    var polls = 0
                    while await handler.cancelledCount == 0 && polls < 100 {
                        polls += 1
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    #expect(await handler.cancelledCount == 1)
                }
            }
        }
    }

    @Test("sequential and concurrent forwards share one connection per peer")
    func connectionReuse() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { server, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    for number in 0..<100 {
                        #expect(try await pool.deliver(sampleOutcome(number), to: address) == .delivered)
                    }
                    let statuses = try await withThrowingTaskGroup(of: ForwardedDeliveryStatus.self) { group in
                        for number in 100..<300 {
                            group.addTask { try await pool.deliver(sampleOutcome(number), to: address) }
                        }
                        return try await group.reduce(into: [ForwardedDeliveryStatus]()) { $0.append($1) }
                    }
                    #expect(statuses.count == 200)
                    #expect(statuses.allSatisfy { $0 == .delivered })
                    #expect(server.acceptedConnectionCount == 1)
                    #expect(pool.openedConnectionCount == 1)
                    #expect(pool.connectedPeers == [address])
                }
            }
            #expect(Set(await handler.outcomes.map(\.id)).count == 300)
        }
    }

    @Test("1 MiB of variables pass byte-for-byte")
    func largeVariables() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            // A JSON object with odd spacing, escapes and multi-byte UTF-8 that a re-encoder would change.
            var text = "{ \"blob\" :\""
            let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789é€😀".map(String.init) + [#"\n"#, #"\""#, #"\u00e9"#]
            var generator = SystemRandomNumberGenerator()
            while text.utf8.count < 1024 * 1024 - 32 {
                text += alphabet[Int(generator.next() % UInt64(alphabet.count))]
            }
            text += "\" ,\"n\": 1.50 }\n"
            let variables = Data(text.utf8)
            #expect(variables.count >= 1024 * 1024 - 32)
            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { _, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    let outcome = sampleOutcome(variables: variables)
                    #expect(try await pool.deliver(outcome, to: address, timeout: .seconds(10)) == .delivered)
                }
            }
            let received = try #require(await handler.outcomes.first)
            #expect(received.variables == Array(variables))
        }
    }

    @Test("requests above the size limit fail without hurting the connection")
    func oversizedRequest() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let handler = RecordingHandler()
            let large = sampleOutcome(
                1, variables: Data(("{\"x\":\"" + String(repeating: "y", count: 100_000) + "\"}").utf8))
            try await withPeerServer(
                credentials: serverCredentials, handler: handler, maxRequestBytes: 64 * 1024
            ) { server, address async throws in
                // Same limit on both sides (one flag for all replicas): refused before it is sent.
                try await withPeerPool(credentials: clientCredentials, maxRequestBytes: 64 * 1024) {
                    pool async throws in
                    let error = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(large, to: address)
                    }
                    #expect(error?.code == .rejected, "\(String(describing: error))")
                    #expect(try await pool.deliver(sampleOutcome(2), to: address) == .delivered)
                }
                // A caller with a larger limit: the server resets the stream, the connection survives.
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    #expect(try await pool.deliver(sampleOutcome(3), to: address) == .delivered)
                    await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(large, to: address)
                    }
                    #expect(try await pool.deliver(sampleOutcome(4), to: address) == .delivered)
                    #expect(pool.openedConnectionCount == 1)
                }
                #expect(server.acceptedConnectionCount == 2)
            }
            #expect(await handler.outcomes.map(\.id) == ["job-2", "job-3", "job-4"])
        }
    }

    @Test("after the peer restarts on the same port, the pool reconnects")
    func peerRestart() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            try await withPeerPool(credentials: clientCredentials) { pool async throws in
                let first = RecordingHandler()
                let address = try await withPeerServer(credentials: serverCredentials, handler: first) {
                    _, address async throws in
                    #expect(try await pool.deliver(sampleOutcome(1), to: address) == .delivered)
                    return address
                }
                // The peer is gone: the forward fails fast with a transport error, not a hang.
                let down = await #expect(throws: PeerDeliveryError.self) {
                    try await pool.deliver(sampleOutcome(2), to: address, timeout: .seconds(3))
                }
                #expect(down?.code == .refused || down?.code == .unreachable, "\(String(describing: down))")

                let second = RecordingHandler()
                try await withPeerServer(credentials: serverCredentials, handler: second, port: address.port) {
                    server, _ async throws in
                    var attempts = 0
                    var delivered = false
                    while !delivered && attempts < 100 {
                        attempts += 1
                        do {
                            delivered = try await pool.deliver(sampleOutcome(3), to: address) == .delivered
                        } catch let error as PeerDeliveryError
                            where error.code == .refused || error.code == .unreachable
                        {
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    #expect(delivered, "no delivery after \(attempts) attempts")
                    // The re-established connection is long-lived again (a reconnect attempt that was under way
                    // when the first forward got through may still land, so count after a first round).
                    for number in 10..<20 {
                        #expect(try await pool.deliver(sampleOutcome(number), to: address) == .delivered)
                    }
                    let connections = server.acceptedConnectionCount
                    #expect(connections >= 1)
                    for number in 20..<30 {
                        #expect(try await pool.deliver(sampleOutcome(number), to: address) == .delivered)
                    }
                    #expect(server.acceptedConnectionCount == connections)
                }
                #expect(await first.outcomes.map(\.id) == ["job-1"])
                #expect(await second.outcomes.map(\.id) == ["job-3"] + (10..<30).map { "job-\($0)" })
            }
        }
    }

    @Test("removing a peer closes its connection; the next forward opens a new one")
    func removePeer() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            try await withPeerServer(credentials: serverCredentials, handler: RecordingHandler()) {
                server, address async throws in
                try await withPeerPool(credentials: clientCredentials) { pool async throws in
                    #expect(try await pool.deliver(sampleOutcome(1), to: address) == .delivered)
                    pool.removePeer(address)
                    #expect(pool.connectedPeers.isEmpty)
                    #expect(try await pool.deliver(sampleOutcome(2), to: address) == .delivered)
                    #expect(server.acceptedConnectionCount == 2)
                }
            }
        }
    }

    @Test("a forward to a replica finds its address in the directory, briefly cached; gone or unreadable is unresolved")
    func replicaAddressesComeFromTheDirectory() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let directory = TestDirectory()
            try await withPeerServer(credentials: serverCredentials, handler: RecordingHandler()) {
                server, address async throws in
                try await withPeerPool(
                    credentials: clientCredentials, directory: directory, addressLifetime: .seconds(2)
                ) { pool async throws in
                    directory.register("replica-1", at: address)
                    #expect(try await pool.deliver(sampleOutcome(1), toReplica: "replica-1") == .delivered)
                    #expect(try await pool.deliver(sampleOutcome(2), toReplica: "replica-1") == .delivered)
                    #expect(directory.lookups == 1)

                    // a replica the directory does not list
                    let unknown = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(3), toReplica: "replica-9")
                    }
                    #expect(unknown?.code == .unresolved)
                    #expect(unknown?.message.contains("replica-9 is not registered") == true)

                    // the directory cannot be read: the cached address still serves, a new lookup fails
                    directory.setUnreadable(true)
                    #expect(try await pool.deliver(sampleOutcome(4), toReplica: "replica-1") == .delivered)
                    try await Task.sleep(for: .milliseconds(2100))
                    let unreadable = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(5), toReplica: "replica-1")
                    }
                    #expect(unreadable?.code == .unresolved)
                    #expect(unreadable?.cause is TestDirectory.Unreadable)
                    directory.setUnreadable(false)

                    // the replica left: its address's connection is closed at the next lookup
                    #expect(pool.connectedPeers == [address])
                    directory.register("replica-1", at: nil)
                    let gone = await #expect(throws: PeerDeliveryError.self) {
                        try await pool.deliver(sampleOutcome(6), toReplica: "replica-1")
                    }
                    #expect(gone?.code == .unresolved)
                    #expect(pool.connectedPeers.isEmpty)

                    // it came back (the same address): a new connection
                    directory.register("replica-1", at: address)
                    #expect(try await pool.deliver(sampleOutcome(7), toReplica: "replica-1") == .delivered)
                    #expect(server.acceptedConnectionCount == 2)
                }
            }
        }
    }

    @Test("a replica that moved to another address has the old address's connection closed")
    func movedReplicaClosesItsOldConnection() async throws {
        try await withClusterCredentials { serverCredentials, clientCredentials in
            let directory = TestDirectory()
            try await withPeerServer(credentials: serverCredentials, handler: RecordingHandler()) {
                _, first async throws in
                try await withPeerServer(credentials: serverCredentials, handler: RecordingHandler()) {
                    _, second async throws in
                    try await withPeerPool(
                        credentials: clientCredentials, directory: directory, addressLifetime: .milliseconds(100)
                    ) { pool async throws in
                        directory.register("replica-1", at: first)
                        #expect(try await pool.deliver(sampleOutcome(1), toReplica: "replica-1") == .delivered)
                        #expect(pool.connectedPeers == [first])
                        directory.register("replica-1", at: second)
                        try await Task.sleep(for: .milliseconds(200))
                        #expect(try await pool.deliver(sampleOutcome(2), toReplica: "replica-1") == .delivered)
                        #expect(pool.connectedPeers == [second])
                    }
                }
            }
        }
    }
}
