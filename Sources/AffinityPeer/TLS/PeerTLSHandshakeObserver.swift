import Logging
import Metrics
import NIOCore
import NIOTLS

/// Sits right behind the TLS handler of a peer connection and counts handshakes that fail (no client
/// certificate, a certificate from another CA, a peer that refused ours). Passes every event on unchanged.
final class PeerTLSHandshakeObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let failures: Counter
    private let logger: Logger
    private var handshakeCompleted = false

    init(failures: Counter, logger: Logger) {
        self.failures = failures
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            self.handshakeCompleted = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !self.handshakeCompleted {
            // Count the first failure of this connection only; the handler closes the channel next.
            self.handshakeCompleted = true
            self.failures.increment()
            self.logger.debug(
                "peer TLS handshake failed",
                metadata: [
                    "affinity.peer.remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "unknown")",
                    "error.message": "\(error)",
                ]
            )
        }
        context.fireErrorCaught(error)
    }
}
