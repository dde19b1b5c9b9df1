import AffinityPeer
import AffinityProtocol
import AffinityTestSupport
import Foundation
import Testing

@Suite("Peer certificate rotation without restart")
struct PeerCertificateRotationTests {
    @Test("new connections use rotated certificates and CA bundles; existing connections keep working")
    func rotation() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let nextCA = try pki.makeAuthority("cluster-next")

            // The server's mounted files, replaced in place later.
            let serverCert = pki.path("server-tls.crt")
            let serverKey = pki.path("server-tls.key")
            let serverCA = pki.path("server-ca.crt")
            let serverFirst = try pki.issue("replica-1", by: ca)
            try pki.replace(serverCert, with: serverFirst.certificatePath)
            try pki.replace(serverKey, with: serverFirst.keyPath)
            try pki.replace(serverCA, with: ca.certificatePath)
            let serverCredentials = try makeCredentials(
                TestPKI.Identity(certificatePath: serverCert, keyPath: serverKey), trusting: serverCA)

            // Caller A's mounted files.
            let callerCert = pki.path("caller-tls.crt")
            let callerKey = pki.path("caller-tls.key")
            let callerFirst = try pki.issue("caller-a1", by: ca)
            try pki.replace(callerCert, with: callerFirst.certificatePath)
            try pki.replace(callerKey, with: callerFirst.keyPath)
            let callerCredentials = try makeCredentials(
                TestPKI.Identity(certificatePath: callerCert, keyPath: callerKey), trusting: ca.certificatePath)

            // Caller B is a replica already issued by the next CA.
            let nextCaller = try makeCredentials(try pki.issue("caller-b", by: nextCA), trusting: ca.certificatePath)

            let handler = RecordingHandler()
            try await withPeerServer(credentials: serverCredentials, handler: handler) { server, address async throws in
                try await withPeerPool(credentials: callerCredentials) { pool async throws in
                    try await withPeerPool(credentials: nextCaller) { nextPool async throws in
                        // A rotated server name is not in the first certificate yet.
                        try await withPeerPool(credentials: callerCredentials, expectedServerName: "rotated.peer") {
                            strictPool async throws in
                            #expect(try await pool.deliver(sampleOutcome(1), to: address) == .delivered)
                            #expect(server.acceptedConnectionCount == 1)
                            let refused = await #expect(throws: PeerDeliveryError.self) {
                                try await nextPool.deliver(sampleOutcome(2), to: address, timeout: .seconds(3))
                            }
                            #expect(refused?.code == .tls)
                            let wrongName = await #expect(throws: PeerDeliveryError.self) {
                                try await strictPool.deliver(sampleOutcome(3), to: address, timeout: .seconds(3))
                            }
                            #expect(wrongName?.code == .tls)

                            // Rotate the server: a new certificate from the same CA naming rotated.peer, and a
                            // CA bundle that also trusts the next CA.
                            let serverNext = try pki.issue("replica-1-rotated", by: ca, names: ["rotated.peer"])
                            try pki.replace(serverCert, with: serverNext.certificatePath)
                            try pki.replace(serverKey, with: serverNext.keyPath)
                            try pki.replace(serverCA, with: try pki.bundle([ca, nextCA], name: "bundle.crt"))
                            #expect(try serverCredentials.reloadIfChanged())
                            #expect(serverCredentials.generation == 2)
                            #expect(serverCredentials.certificateSubject.contains("replica-1-rotated"))
                            #expect(try serverCredentials.reloadIfChanged() == false)

                            // The existing connection keeps working, without a new handshake. (The refused
                            // pools keep reconnecting in the background, so count on the caller's side.)
                            #expect(pool.openedConnectionCount == 1)
                            #expect(try await pool.deliver(sampleOutcome(4), to: address) == .delivered)
                            #expect(pool.openedConnectionCount == 1)

                            // New connections see the new server certificate and the new CA bundle.
                            #expect(
                                try await Self.eventually {
                                    try await strictPool.deliver(sampleOutcome(5), to: address)
                                })
                            #expect(
                                try await Self.eventually { try await nextPool.deliver(sampleOutcome(6), to: address) })
                        }

                        // Rotate caller A: its next forward opens a new connection with the new certificate.
                        let callerNext = try pki.issue("caller-a2", by: ca)
                        try pki.replace(callerCert, with: callerNext.certificatePath)
                        try pki.replace(callerKey, with: callerNext.keyPath)
                        #expect(try callerCredentials.reloadIfChanged())
                        let openedBefore = pool.openedConnectionCount
                        #expect(try await pool.deliver(sampleOutcome(7), to: address) == .delivered)
                        #expect(pool.openedConnectionCount == openedBefore + 1)
                    }
                }
            }
            let received = await handler.outcomes.map(\.id)
            let subjects = await handler.callers.map { $0.certificateSubject ?? "" }
            #expect(received == ["job-1", "job-4", "job-5", "job-6", "job-7"])
            #expect(subjects[0].contains("CN=caller-a1"))
            #expect(subjects[1].contains("CN=caller-a1"))
            #expect(subjects[3].contains("CN=caller-b"))
            #expect(subjects[4].contains("CN=caller-a2"))
        }
    }

    @Test("a broken or half-written rotation is refused and the previous material stays in use")
    func brokenRotationKeepsPreviousMaterial() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let first = try pki.issue("replica-1", by: ca)
            let cert = pki.path("tls.crt")
            let key = pki.path("tls.key")
            try pki.replace(cert, with: first.certificatePath)
            try pki.replace(key, with: first.keyPath)
            let credentials = try makeCredentials(
                TestPKI.Identity(certificatePath: cert, keyPath: key), trusting: ca.certificatePath)

            // New certificate, old key: the pair does not match.
            let second = try pki.issue("replica-1-next", by: ca)
            try pki.replace(cert, with: second.certificatePath)
            let mismatch = #expect(throws: PeerTLSError.self) { try credentials.reloadIfChanged() }
            #expect(mismatch?.code == .keyMismatch)
            #expect(credentials.generation == 1)
            #expect(
                credentials.certificateSubject.contains("CN=replica-1,")
                    || credentials.certificateSubject.hasSuffix("CN=replica-1"))

            // The key arrives: the reload succeeds.
            try pki.replace(key, with: second.keyPath)
            #expect(try credentials.reloadIfChanged())
            #expect(credentials.generation == 2)

            // Garbage in the certificate file.
            try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: cert))
            let garbage = #expect(throws: PeerTLSError.self) { try credentials.reloadIfChanged() }
            #expect(garbage?.code == .invalidCertificate)
            #expect(credentials.generation == 2)
        }
    }

    @Test("the credentials service picks up changed files by itself")
    func pollingReload() async throws {
        try await withTestPKI { pki in
            let ca = try pki.makeAuthority("cluster")
            let first = try pki.issue("replica-1", by: ca)
            let cert = pki.path("tls.crt")
            let key = pki.path("tls.key")
            try pki.replace(cert, with: first.certificatePath)
            try pki.replace(key, with: first.keyPath)
            let credentials = try PeerTLSCredentials(
                files: PeerTLSFiles(certificatePath: cert, privateKeyPath: key, trustRootsPath: ca.certificatePath),
                pollInterval: .milliseconds(50),
                logger: makeTestLogger("peer.tls")
            )
            try await withRunningServices([credentials]) {
                let second = try pki.issue("replica-1-next", by: ca)
                try pki.replace(key, with: second.keyPath)
                try pki.replace(cert, with: second.certificatePath)
                var polls = 0
                while credentials.generation == 1 && polls < 200 {
                    polls += 1
                    try await Task.sleep(for: .milliseconds(25))
                }
                #expect(credentials.generation == 2)
                #expect(credentials.certificateSubject.contains("replica-1-next"))
            }
        }
    }

    /// Retries an operation while it fails with a TLS or connection error (the pool backs off after a
    /// refused handshake); returns whether it delivered.
    static func eventually(_ operation: () async throws -> ForwardedDeliveryStatus) async throws -> Bool {
        for _ in 0..<100 {
            do {
                return try await operation() == .delivered
            } catch let error as PeerDeliveryError where [.tls, .refused, .unreachable].contains(error.code) {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return false
    }
}
