import AffinityProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// One protocol v1 WebSocket connection of the load generator, as a client or a worker.
final class BenchConnection: Sendable {
    /// The replica id from `welcome`.
    let replica: String
    let inbox: BenchInbox
    private let channel: any Channel
    /// A flush is scheduled on the channel's event loop and has not run yet (read and written there only).
    private let flushScheduled = Atomic<Bool>(false)
    private let masks = Mutex(WebSocketMaskGenerator())

    private init(replica: String, inbox: BenchInbox, channel: any Channel) {
        self.replica = replica
        self.inbox = inbox
        self.channel = channel
    }

    /// Connects to `ws://127.0.0.1:<port>/v1/ws`, says `hello` and waits for `welcome`.
    ///
    /// - Parameter sourceAddress: the loopback address to connect from (nil: the kernel's choice,
    ///   127.0.0.1). One source address has about 28,000 ephemeral ports towards one server port.
    static func connect(
        port: Int, role: PeerRole, clientId: String, keepsReceivedIDs: Bool = true, sourceAddress: String? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> BenchConnection {
        let inbox = BenchInbox(keepsReceivedIDs: keepsReceivedIDs)
        let connected: (any Channel, EventLoopFuture<Bool>)
        do {
            var bootstrap = ClientBootstrap(group: group).channelOption(.socketOption(.tcp_nodelay), value: 1)
            if let sourceAddress {
                bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: sourceAddress, port: 0))
            }
            connected =
                try await bootstrap
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let upgrader = NIOTypedWebSocketClientUpgrader<Bool>(
                            maxFrameSize: 1 << 20,
                            upgradePipelineHandler: { channel, _ in
                                channel.eventLoop.makeCompletedFuture {
                                    try channel.pipeline.syncOperations.addHandler(BenchFrameHandler(inbox: inbox))
                                    return true
                                }
                            })
                        var headers = HTTPHeaders()
                        headers.add(name: "Host", value: "127.0.0.1:\(port)")
                        headers.add(name: "Content-Length", value: "0")
                        let configuration = NIOTypedHTTPClientUpgradeConfiguration(
                            upgradeRequestHead: HTTPRequestHead(
                                version: .http1_1, method: .GET, uri: "/v1/ws", headers: headers),
                            upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeCompletedFuture { false }
                            })
                        let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                            configuration: .init(upgradeConfiguration: configuration))
                        return (channel, negotiated)
                    }
                }
        } catch {
            throw BenchError(.connection, "cannot connect to 127.0.0.1:\(port)", cause: ErrorText("\(error)"))
        }
        let (channel, upgraded) = connected
        guard try await upgraded.get() else {
            try? await channel.close()
            throw BenchError(.connection, "127.0.0.1:\(port) refused the WebSocket upgrade")
        }
        let connection = BenchConnection(replica: "", inbox: inbox, channel: channel)
        let hello = AffinityMessage.hello(role: role, clientId: clientId).encoded()
        guard case .welcome(let replica) = try await inbox.request(.welcome, send: { connection.send(hello) }) else {
            throw BenchError(.protocolViolation, "hello was not answered with welcome")
        }
        return BenchConnection(replica: replica, inbox: inbox, channel: channel)
    }

    /// Subscribes to `key` and waits for `subscribed`.
    func subscribe(_ key: ProcessInstanceKey) async throws {
        let frame = AffinityMessage.subscribe(key: key).encoded()
        _ = try await inbox.request(.subscribed(key.value), send: { send(frame) })
    }

    /// Unsubscribes from `key` and waits for `unsubscribed`.
    func unsubscribe(_ key: ProcessInstanceKey) async throws {
        let frame = AffinityMessage.unsubscribe(key: key).encoded()
        _ = try await inbox.request(.unsubscribed(key.value), send: { send(frame) })
    }

    /// Sends `outcome` as a worker and waits for its `result`.
    func deliver(_ outcome: Outcome) async throws -> DeliveryStatus {
        let frame = outcome.frame
        guard case .result(let status) = try await inbox.request(.result(outcome.id), send: { send(frame) }) else {
            throw BenchError(.protocolViolation, "outcome \(outcome.id) was not answered with result")
        }
        return status
    }

    /// Closes the connection.
    func close() async {
        inbox.close(BenchError(.connection, "closed by the benchmark"))
        try? await channel.close()
    }

    /// Writes a frame; the frames sent before the event loop gets to the flush leave in one write (the
    /// outcomes of many slots' tasks at once), as the replica's own connections do.
    private func send(_ bytes: [UInt8]) {
        let maskKey = masks.withLock { $0.next() as WebSocketMaskingKey }
        let frame = WebSocketFrame(
            fin: true, opcode: .text, maskKey: maskKey, data: channel.allocator.buffer(bytes: bytes))
        if channel.eventLoop.inEventLoop {
            write(frame)
        } else {
            channel.eventLoop.execute { self.write(frame) }
        }
    }

    /// On the event loop: a frame written while a flush is scheduled leaves with it, else it schedules one.
    private func write(_ frame: WebSocketFrame) {
        channel.write(frame, promise: nil)
        guard !flushScheduled.exchange(true, ordering: .relaxed) else { return }
        channel.eventLoop.execute {
            self.flushScheduled.store(false, ordering: .relaxed)
            self.channel.flush()
        }
    }
}
