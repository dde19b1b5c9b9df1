import AffinityTestSupport
import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on loopback between a replica's peers and its peer port, to break the peer channel the way a
/// network does: it passes every byte both ways until told to drop what the target sends back (``dropReplies``),
/// then cuts every connection (``cutAll()``) so that both ends see the connection break. Bytes are relayed as they
/// are (the peer channel's TLS goes end to end through it).
final class TCPRelay: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let listener: any Channel
    private let state: RelayState

    /// The relay's own port: advertise `127.0.0.1:port` instead of the target's.
    var port: Int { listener.localAddress?.port ?? 0 }

    /// Starts a relay to `127.0.0.1:targetPort` on a free loopback port.
    init(targetPort: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = RelayState()
        self.group = group
        self.state = state
        self.listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: "127.0.0.1", port: targetPort)
                    .flatMap { outbound in
                        state.mutex.withLock { $0.channels += [inbound, outbound] }
                        let replies = RelayHandler(peer: inbound) { state.mutex.withLock { $0.droppingReplies } }
                        let requests = RelayHandler(peer: outbound) { false }
                        return outbound.pipeline.addHandler(replies).flatMap {
                            inbound.pipeline.addHandler(requests)
                        }.map { inbound.setOption(.autoRead, value: true) }.flatMap { $0 }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// From now on, bytes the target sends back are dropped (the callers' requests still reach it).
    func dropReplies() {
        state.mutex.withLock { $0.droppingReplies = true }
    }

    /// Closes every relayed connection on both sides and relays normally again for new connections.
    func cutAll() async {
        let channels = state.mutex.withLock { state in
            state.droppingReplies = false
            defer { state.channels.removeAll() }
            return state.channels
        }
        for channel in channels { try? await channel.close() }
    }

    /// Closes the listener and every connection.
    func shutdown() async {
        await cutAll()
        try? await listener.close()
        try? await group.shutdownGracefully()
    }
}

/// The relay's connections, and whether it drops what the target sends back.
private final class RelayState: Sendable {
    struct State {
        var channels: [any Channel] = []
        var droppingReplies = false
    }

    let mutex = Mutex(State())
}

/// Writes what one side reads to the other side, unless `dropping` says to throw it away; closes the other side
/// when its own closes.
private final class RelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    private let peer: any Channel
    private let dropping: @Sendable () -> Bool

    init(peer: any Channel, dropping: @escaping @Sendable () -> Bool) {
        self.peer = peer
        self.dropping = dropping
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !dropping() else { return }
        peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }
}
