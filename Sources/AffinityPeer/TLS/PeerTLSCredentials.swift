import Logging
import Metrics
import NIOCertificateReloading
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The replica's current peer-channel TLS material, reloaded from its files while the replica runs.
///
/// Both ends of the peer channel read it at every new TLS handshake:
/// - the own certificate and key through swift-nio-ssl's certificate reloader hook (a context callback
///   that runs at every handshake), so the server and the client present the newest certificate;
/// - the trust roots through a custom verification callback (``PeerCertificateVerifier``), so a new CA
///   bundle is trusted at once, without rebuilding any TLS context or restarting the listener.
///
/// Existing connections are not touched by a reload: TLS identities are fixed at handshake time. Run it
/// as a `Service` to poll the files (by content) every ``pollInterval``, or call ``reloadIfChanged()``.
/// A broken or half-written set of files is refused with a logged warning and the previous material
/// stays in use, so a rotation in progress never breaks the channel.
///
/// ```swift
/// let credentials = try PeerTLSCredentials(
///     files: PeerTLSFiles(certificatePath: "/etc/peer/tls.crt", privateKeyPath: "/etc/peer/tls.key",
///                         trustRootsPath: "/etc/peer/ca.crt"),
///     logger: logger
/// )
/// ```
public final class PeerTLSCredentials: CertificateReloader, Service, Sendable {
    private struct State: Sendable {
        var material: PeerTLSMaterial
        var generation: Int
    }

    /// The files this instance reads.
    public let files: PeerTLSFiles
    /// How often ``run()`` compares the files with the loaded material.
    public let pollInterval: Duration
    private let logger: Logger
    private let metrics: PeerMetrics
    private let state: Mutex<State>

    /// Loads the files once; throws when they are not a usable certificate, key and CA bundle.
    ///
    /// - Parameters:
    ///   - files: The PEM files.
    ///   - pollInterval: How often ``run()`` checks the files for changes.
    ///   - logger: Where reloads and refused files are logged.
    ///   - metricsFactory: Where the reload counter is reported.
    public init(
        files: PeerTLSFiles,
        pollInterval: Duration = .seconds(5),
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) throws(PeerTLSError) {
        self.files = files
        self.pollInterval = pollInterval
        self.logger = logger
        self.metrics = PeerMetrics(factory: metricsFactory)
        let material = try PeerTLSMaterial(contents: try PeerTLSMaterial.readContents(of: files))
        self.state = Mutex(State(material: material, generation: 1))
        logger.info(
            "peer TLS material loaded",
            metadata: [
                "affinity.peer.tls.subject": "\(material.subject)",
                "affinity.peer.tls.not_after": "\(material.notValidAfter)",
                "affinity.peer.tls.trust_roots": "\(material.trustRoots.count)",
            ]
        )
    }

    /// Increases by one at every reload that changed the material; starts at 1.
    public var generation: Int {
        self.state.withLock { $0.generation }
    }

    /// The subject of the replica's own current certificate.
    public var certificateSubject: String {
        self.state.withLock { $0.material.subject }
    }

    /// The current CA bundle as PEM bytes.
    var trustRootsPEM: [UInt8] {
        self.state.withLock { $0.material.contents.trustRoots }
    }

    /// Reads the files and, when their contents changed and parse correctly, makes them current.
    ///
    /// - Returns: `true` when new material was loaded.
    /// - Throws: ``PeerTLSError`` when the files changed but are unusable; the previous material stays.
    @discardableResult
    public func reloadIfChanged() throws(PeerTLSError) -> Bool {
        let contents = try PeerTLSMaterial.readContents(of: self.files)
        let current = self.state.withLock { $0.material.contents }
        guard contents != current else { return false }
        let material = try PeerTLSMaterial(contents: contents)
        let generation = self.state.withLock { state in
            state.material = material
            state.generation += 1
            return state.generation
        }
        self.logger.info(
            "peer TLS material reloaded",
            metadata: [
                "affinity.peer.tls.generation": "\(generation)",
                "affinity.peer.tls.subject": "\(material.subject)",
                "affinity.peer.tls.not_after": "\(material.notValidAfter)",
                "affinity.peer.tls.trust_roots": "\(material.trustRoots.count)",
            ]
        )
        return true
    }

    /// Polls the files every ``pollInterval`` until graceful shutdown or cancellation.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: self.pollInterval)
                    self.pollOnce()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    private func pollOnce() {
        do {
            if try self.reloadIfChanged() {
                self.metrics.tlsReloadSucceeded.increment()
            }
        } catch {
            self.metrics.tlsReloadFailed.increment()
            self.logger.warning(
                "peer TLS files changed but cannot be used; keeping the previous material",
                metadata: ["error.message": "\(error)"]
            )
        }
    }

    /// The certificate chain and key for the handshake that is starting (certificate reloader hook).
    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
        let material = self.state.withLock { $0.material }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = material.certificateChain.map { .certificate($0) }
        override.privateKey = .privateKey(material.privateKey)
        return override
    }

    /// A swift-nio-ssl custom verification callback that checks the peer's chain against the trust roots
    /// current at handshake time.
    func verificationCallback(
        peerRole: PeerCertificateVerifier.PeerRole,
        expectedServerName: String?
    ) -> @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
        { [self] presented, promise in
            let verifier = PeerCertificateVerifier(
                trustRoots: self.state.withLock { $0.material.trustRoots },
                peerRole: peerRole,
                expectedServerName: expectedServerName
            )
            // The verifier's API is async; NIO runs it off the event loop and completes the handshake's
            // promise with the result, which bounds the task by the handshake.
            // Rejections are counted as handshake failures by PeerTLSHandshakeObserver.
            promise.completeWithTask { [logger = self.logger] in
                do {
                    let chain = try await verifier.verify(presented)
                    return .certificateVerified(VerificationMetadata(ValidatedCertificateChain(chain)))
                } catch {
                    logger.debug(
                        "peer certificate rejected",
                        metadata: ["affinity.peer.role": "\(peerRole.rawValue)", "error.message": "\(error)"]
                    )
                    return .failed
                }
            }
        }
    }
}
