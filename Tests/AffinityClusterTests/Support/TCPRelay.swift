import AffinityTestSupport
import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on loopback between a replica's peers and its peer port, to fail the peer channel the way a
/// network does: it passes every byte both ways until told to drop what the target sends back
/// (``dropReplies()``) or to hold it back for a while (``delayReplies(by:)``, a connection that stalls without
/// breaking), and it cuts every connection (``cutAll()``) so that both ends see the connection break. Bytes are
/// relayed as they are (the peer channel's TLS goes end to end through it) and in order.
final class TCPRelay: Sendable {
    /// What the relay does with the bytes the target sends back.
    enum Replies: Sendable {
        case pass
        case drop
        case delay(Duration)
    }

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
                        let replies = RelayHandler(peer: inbound) { state.mutex.withLock { $0.replies } }
                        let requests = RelayHandler(peer: outbound) { .pass }
                        return outbound.pipeline.addHandler(replies).flatMap {
                            inbound.pipeline.addHandler(requests)
                        }.map { inbound.setOption(.autoRead, value: true) }.flatMap { $0 }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// From now on, bytes the target sends back are dropped (the callers' requests still reach it).
    func dropReplies() {
        state.mutex.withLock { $0.replies = .drop }
    }

    /// From now on, bytes the target sends back are passed on `delay` after they came (in order; the callers'
    /// requests still reach it at once).
    func delayReplies(by delay: Duration) {
        state.mutex.withLock { $0.replies = .delay(delay) }
    }

    /// From now on, bytes the target sends back are passed on at once (after any still held back).
    func passReplies() {
        state.mutex.withLock { $0.replies = .pass }
    }

    /// Closes every relayed connection on both sides and relays normally again for new connections.
    func cutAll() async {
        let channels = state.mutex.withLock { state in
            state.replies = .pass
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

/// The relay's connections, and what it does with what the target sends back.
private final class RelayState: Sendable {
    struct State {
        var channels: [any Channel] = []
        var replies = TCPRelay.Replies.pass
    }

    let mutex = Mutex(State())
}

/// Writes what one side reads to the other side, as `policy` says (pass, drop, or pass later: bytes held back
/// keep their order, and bytes that come while older ones are held back wait for them); closes the other side
/// when its own closes.
private final class RelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    private let peer: any Channel
    private let policy: @Sendable () -> TCPRelay.Replies
    /// Bytes held back, each with when to pass it on, oldest first.
    private let held = Mutex<[(at: NIODeadline, bytes: ByteBuffer)]>([])

    init(peer: any Channel, policy: @escaping @Sendable () -> TCPRelay.Replies) {
        self.peer = peer
        self.policy = policy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let delay: TimeAmount
        switch policy() {
        case .drop: return
        case .pass: delay = .zero
        case .delay(let duration): delay = .nanoseconds(Int64(duration / .nanoseconds(1)))
        }
        let now = NIODeadline.now()
        let at = held.withLock { held in
            let at = max(now + delay, held.last?.at ?? now)
            if held.isEmpty && at <= now { return Optional<NIODeadline>.none }
            held.append((at, bytes))
            return at
        }
        guard let at else {
            peer.writeAndFlush(bytes, promise: nil)
            return
        }
        context.eventLoop.scheduleTask(deadline: at) { self.passDue() }
    }

    /// Passes on the bytes whose time came, in order.
    private func passDue() {
        let now = NIODeadline.now()
        let due = held.withLock { held in
            let count = held.prefix { $0.at <= now }.count
            defer { held.removeFirst(count) }
            return held.prefix(count).map(\.bytes)
        }
        for bytes in due { peer.write(bytes, promise: nil) }
        if !due.isEmpty { peer.flush() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }
}
