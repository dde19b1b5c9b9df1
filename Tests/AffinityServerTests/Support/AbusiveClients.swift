import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Raw TCP clients that misbehave against a replica on loopback, for the load tests: sockets that
/// upgrade, say hello and then idle; sockets that never send a request head; a worker that floods
/// outcomes without waiting for results. Each keeps its channels until ``closeAll()``.
final class AbusiveClients: Sendable {
    /// What the server answered the upgrades and how many connections it closed.
    struct Tally: Sendable, Equatable {
        var upgraded = 0
        var refused = 0
        var closedByServer = 0
    }

    /// The tally, shared with the channel handlers.
    private final class Shared: Sendable {
        let tally = Mutex(Tally())
        /// Set by ``closeAll()``: closes from then on are ours, not the server's.
        let closing = Atomic<Bool>(false)
    }

    private let channels = Mutex<[any Channel]>([])
    private let shared = Shared()
    let port: Int
    private let group: any EventLoopGroup

    /// - Parameter group: where the clients' channels run.
    init(port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.port = port
        self.group = group
    }

    var counts: Tally { shared.tally.withLock { $0 } }

    /// Opens `count` WebSockets that upgrade, say hello as clients and then send nothing more.
    func openIdleWebSockets(_ count: Int, clientPrefix: String) async throws {
        for index in 0..<count {
            let hello = #"{"type":"hello","role":"client","clientId":"\#(clientPrefix)-\#(index)"}"#
            let channel = try await connect()
            try await channel.writeAndFlush(
                ByteBuffer(
                    bytes: Array(RawWebSocket.upgradeRequest.utf8)
                        + RawWebSocket.frame(opcode: 0x1, payload: Array(hello.utf8)))
            ).get()
        }
    }

    /// Opens one client per group of keys that upgrades, says hello, subscribes to its keys and
    /// then never reads again (with a small receive buffer, so the server's writes back up soon).
    func openSlowReaders(keys: [[Int64]]) async throws {
        for (index, group) in keys.enumerated() {
            let channel = try await connect(receiveBuffer: 4096)
            try await channel.setOption(ChannelOptions.autoRead, value: false).get()
            let hello = #"{"type":"hello","role":"client","clientId":"slow-\#(index)"}"#
            var bytes = Array(RawWebSocket.upgradeRequest.utf8) + Self.cheapFrame(Array(hello.utf8))
            for key in group {
                bytes += Self.cheapFrame(Array(#"{"type":"subscribe","key":"\#(key)"}"#.utf8))
            }
            try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
        }
    }

    /// Opens `count` TCP connections that never send a byte.
    func openSilentSockets(_ count: Int) async throws {
        for _ in 0..<count { _ = try await connect() }
    }

    /// Sends `outcome` frames for `keys` (cycling), reading and discarding every answer, until
    /// `limit` were sent, the task is cancelled or the server closes the connection: as fast as
    /// the socket takes them, or `perSecond` (in bursts of a tenth of it every 100 ms). Returns the
    /// number of outcomes written. The frames are made once (with a zero masking key, which
    /// RFC 6455 allows), so that the flood costs this process little CPU.
    func flood(
        keys: ClosedRange<Int64>, variablesBytes: Int, limit: Int = .max, perSecond: Int? = nil,
        name: String = "flood"
    ) async throws -> Int {
        let channel = try await connect()
        let hello = #"{"type":"hello","role":"worker","clientId":"\#(name)"}"#
        try await channel.writeAndFlush(
            ByteBuffer(bytes: Array(RawWebSocket.upgradeRequest.utf8) + Self.cheapFrame(Array(hello.utf8)))
        ).get()
        let filler = String(repeating: "f", count: max(0, variablesBytes - 8))
        let distinct = min(limit, perSecond.map { max(1, $0 / 10) } ?? 2048)
        var frames = ByteBuffer()
        var key = keys.lowerBound
        for index in 0..<distinct {
            let outcome =
                #"{"type":"outcome","id":"\#(name)-\#(index)","key":"\#(key)","variables":{"f":"\#(filler)"}}"#
            frames.writeBytes(Self.cheapFrame(Array(outcome.utf8)))
            key = key == keys.upperBound ? keys.lowerBound : key + 1
        }
        var sent = 0
        var next = ContinuousClock.now
        while !Task.isCancelled && channel.isActive && sent < limit {
            do {
                try await channel.writeAndFlush(frames).get()
            } catch {
                break
            }
            sent += distinct
            if perSecond != nil {
                next += .milliseconds(100)
                try? await Task.sleep(until: next)
            }
        }
        return sent
    }

    /// A masked text frame with a zero masking key: the payload goes out as it is.
    private static func cheapFrame(_ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x81]
        if payload.count < 126 {
            bytes.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(0x80 | 127)
            bytes += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        return bytes + [0, 0, 0, 0] + payload
    }

    /// Closes every channel these clients opened.
    func closeAll() async {
        shared.closing.store(true, ordering: .relaxed)
        let open = channels.withLock { channels in
            defer { channels = [] }
            return channels
        }
        for channel in open { try? await channel.close() }
    }

    private func connect(receiveBuffer: Int? = nil) async throws -> any Channel {
        let shared = self.shared
        var bootstrap = ClientBootstrap(group: group)
        if let receiveBuffer {
            bootstrap = bootstrap.channelOption(
                ChannelOptions.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
        }
        let channel =
            try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ResponseWatcher(shared: shared))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        channels.withLock { $0.append(channel) }
        return channel
    }

    /// Reads and discards what the server sends; notes the upgrade answer and a close by the server.
    private final class ResponseWatcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        private let shared: Shared
        /// The first bytes of the answer, until its status line is known.
        private let start = Mutex<[UInt8]?>([])

        init(shared: Shared) {
            self.shared = shared
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            let status = start.withLock { start -> String? in
                guard var bytes = start else { return nil }
                bytes += buffer.readableBytesView.prefix(12 - bytes.count)
                guard bytes.count == 12 else {
                    start = bytes
                    return nil
                }
                start = nil
                return String(decoding: bytes, as: UTF8.self)
            }
            guard let head = status else { return }
            shared.tally.withLock {
                if head == "HTTP/1.1 101" { $0.upgraded += 1 } else { $0.refused += 1 }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            guard !shared.closing.load(ordering: .relaxed) else { return }
            shared.tally.withLock { $0.closedByServer += 1 }
        }
    }
}
