import AffinityProtocol
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// One logical connection to the affinity service that says `hello`, waits for `welcome`, and
/// reconnects with back-off, moving to the next URL after a failure or a `drain`.
///
/// On `drain` a client connection ends at once; a worker connection stays until the replica closes
/// it, so the answers to outcomes already sent still arrive (``ConnectionEvents/connectionDraining()``).
///
/// ``run(events:)`` loops until the task is cancelled; all decisions come from ``ConnectionStateMachine``.
struct ReconnectingConnection: Sendable {
    let configuration: AffinityConnectionConfiguration
    let role: PeerRole
    let clientID: String
    let logger: Logger
    let random: @Sendable () -> Double

    init(
        configuration: AffinityConnectionConfiguration, role: PeerRole, clientID: String, logger: Logger,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.configuration = configuration
        self.role = role
        self.clientID = clientID
        self.logger = logger
        self.random = random
    }

    /// How one connection ended, filled in while it runs.
    private final class Report: Sendable {
        struct Values: Sendable {
            var replica: String?
            var drained = false
            var refusal: AffinityError?
        }

        private let values = Mutex(Values())

        func withLock<T: Sendable>(_ body: (inout Values) -> T) -> T {
            values.withLock { body(&$0) }
        }
    }

    /// Throws `bad_request` when no URL is configured.
    func validate() throws(AffinityClientError) {
        guard !configuration.urls.isEmpty else {
            throw AffinityClientError(code: .badRequest, message: "no affinity service URL is configured")
        }
    }

    /// Connects, serves and reconnects until cancelled; call ``validate()`` first.
    func run(events: some ConnectionEvents) async {
        guard !configuration.urls.isEmpty else { return }
        var machine = ConnectionStateMachine(urlCount: configuration.urls.count, backoff: configuration.backoff)
        while !Task.isCancelled {
            guard case .connect(let index, let delay) = machine.nextAttempt(random: random()) else { return }
            if delay > .zero {
                logger.debug(
                    "reconnecting after a delay",
                    metadata: ["affinity.url": "\(configuration.urls[index])", "affinity.delay": "\(delay)"])
                guard (try? await Task.sleep(for: delay)) != nil else { return }
            }
            machine.attemptStarted()
            let url = configuration.urls[index]
            let report = Report()
            var failure: (any Error)?
            do {
                try await connectOnce(url: url, report: report, events: events)
            } catch {
                failure = error
                if !Task.isCancelled {
                    logger.debug(
                        "connection ended with an error", metadata: ["affinity.url": "\(url)", "error": "\(error)"])
                }
            }
            let final = report.withLock { $0 }
            if let replica = final.replica {
                machine.welcomed(replica: replica)
                if final.drained {
                    machine.drainReceived()
                    logger.info("replica is draining; moving to another", metadata: ["affinity.replica": "\(replica)"])
                } else {
                    logger.info("connection to the affinity service lost", metadata: ["affinity.replica": "\(replica)"])
                }
                events.connectionEnded()
            } else if let refusal = final.refusal {
                logger.warning(
                    "the affinity service refused the connection",
                    metadata: [
                        "affinity.url": "\(url)", "affinity.code": "\(refusal.code)", "error": "\(refusal.message)",
                    ])
            }
            machine.connectionEnded()
            if machine.consecutiveFailures == configuration.urls.count, !Task.isCancelled {
                // once per outage: every URL failed once; from now on only back-off retries
                logger.warning(
                    "cannot reach the affinity service at any URL; retrying with back-off",
                    metadata: [
                        "affinity.url": "\(url)", "error": "\(failure.map { "\($0)" } ?? "closed before welcome")",
                    ])
            }
        }
    }

    private func connectOnce(url: String, report: Report, events: some ConnectionEvents) async throws {
        var headers: [(String, String)] = []
        if let token = configuration.token {
            headers.append(("Authorization", "Bearer \(try token.resolve())"))
        }
        let transport = WebSocketTransport(
            maxMessageBytes: configuration.maxMessageBytes, headers: headers, tls: configuration.tls,
            serverName: configuration.tlsServerName, pingInterval: configuration.pingInterval)
        let handshakeTimeout = configuration.handshakeTimeout
        let hello = AffinityMessage.hello(role: role, clientId: clientID)
        let logger = self.logger
        try await transport.run(url: url, timeout: handshakeTimeout) { inbound, outbound in
            let (frames, continuation) = AsyncStream.makeStream(of: [UInt8].self)
            let writer = ConnectionWriter(continuation: continuation)
            defer { continuation.finish() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await frame in frames {
                        try await outbound.send(text: frame)
                    }
                    // the owner finished the writer of a drained worker connection: every answer is in
                    if !Task.isCancelled, report.withLock({ $0.drained }) {
                        try await outbound.close(code: .normalClosure, reason: "drained")
                    }
                }
                group.addTask {
                    try await Task.sleep(for: handshakeTimeout)
                    guard report.withLock({ $0.replica == nil }) else { return }
                    throw AffinityClientError(code: .timeout, message: "no welcome within \(handshakeTimeout)")
                }
                writer.send(hello)
                reading: for try await message in inbound {
                    guard case .text(let text) = message else {
                        logger.debug("ignoring a binary frame from the affinity service")
                        continue
                    }
                    let decoded: AffinityMessage
                    do {
                        decoded = try AffinityMessage.decode(text)
                    } catch {
                        logger.warning(
                            "ignoring a malformed message from the affinity service", metadata: ["error": "\(error)"])
                        continue
                    }
                    let welcomed = report.withLock { $0.replica != nil }
                    switch decoded {
                    case .welcome(let replica, _) where !welcomed:
                        report.withLock { $0.replica = replica }
                        logger.debug("welcomed", metadata: ["affinity.replica": "\(replica)"])
                        events.connectionReady(writer: writer, replica: replica)
                    case .drain:
                        let first = report.withLock { report in
                            defer { report.drained = true }
                            return !report.drained
                        }
                        // a client leaves at once; a worker keeps reading the answers to the outcomes
                        // it sent until the replica closes the connection
                        guard role == .worker, welcomed else { break reading }
                        if first { events.connectionDraining() }
                    case .error(let code, let text, let ref) where !welcomed:
                        report.withLock { $0.refusal = AffinityError(code: code, message: text, ref: ref) }
                    default:
                        if welcomed {
                            events.received(decoded)
                        } else {
                            logger.debug(
                                "ignoring a message before welcome", metadata: ["affinity.type": "\(decoded.type)"])
                        }
                    }
                }
                continuation.finish()
                group.cancelAll()
            }
        }
    }
}
