import AffinityProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// One client WebSocket connection on SwiftNIO whose every step the caller bounds: the TCP connect and the
/// HTTP upgrade end within a deadline and as soon as the task is cancelled, because the transport owns the
/// channel and closes it. (A replica that accepts TCP but never answers, frozen or late in its shutdown,
/// must not hold failover or the owner's shutdown.)
///
/// After the upgrade it answers pings, sends its own pings and closes when one goes unanswered, takes part
/// in the close handshake, masks what it sends, and reassembles fragmented messages up to a size limit.
struct WebSocketTransport: Sendable {
    /// Where the URL points.
    struct Endpoint: Sendable, Equatable {
        var host: String
        var port: Int
        var path: String
        var secure: Bool
    }

    /// The messages of an established connection.
    enum Message: Sendable {
        case text([UInt8])
        case binary
    }

    let maxMessageBytes: Int
    let headers: [(String, String)]
    let tls: TLSConfiguration?
    let serverName: String?
    let pingInterval: Duration?

    /// Parses `ws://host:port/path` or `wss://...` (IPv6 hosts in brackets).
    static func endpoint(of url: String) throws(AffinityClientError) -> Endpoint {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "ws" || scheme == "wss", let host = components.host, !host.isEmpty
        else {
            throw AffinityClientError(code: .badRequest, message: "\(url) is not a ws:// or wss:// URL")
        }
        let secure = scheme == "wss"
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?" + query }
        return Endpoint(host: bare, port: components.port ?? (secure ? 443 : 80), path: path, secure: secure)
    }

    /// Connects, upgrades within `timeout`, then runs `body` with the inbound messages and a writer; the
    /// connection is closed when `body` returns or throws, or when the task is cancelled.
    func run(
        url: String, timeout: Duration,
        _ body: (_ inbound: AsyncThrowingStream<Message, any Error>, _ outbound: Writer) async throws -> Void
    ) async throws {
        let endpoint = try Self.endpoint(of: url)
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
            ?? (endpoint.secure ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil)
        let requestHead = makeRequestHead(endpoint)
        let serverName = self.serverName ?? (Self.isAddressLiteral(endpoint.host) ? nil : endpoint.host)
        let maxMessageBytes = self.maxMessageBytes
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let (channel, upgrade) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: serverName)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeResult>(
                        maxFrameSize: maxMessageBytes,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(
                                    NIOWebSocketFrameAggregator(
                                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16,
                                        maxAccumulatedFrameSize: maxMessageBytes))
                                return .webSocket(
                                    try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                                        wrappingChannelSynchronously: channel))
                            }
                        })
                    let configuration = NIOUpgradableHTTPClientPipelineConfiguration(
                        upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration(
                            upgradeRequestHead: requestHead, upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeSucceededFuture(.refused)
                            }))
                    let upgrade = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: configuration)
                    return (channel, upgrade)
                }
            }
        // the upgrade has the rest of the deadline; closing the channel fails it at once
        let watchdog = channel.eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
        let result: UpgradeResult
        do {
            result = try await withTaskCancellationHandler {
                try await upgrade.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            watchdog.cancel()
        } catch {
            watchdog.cancel()
            channel.close(promise: nil)
            if Task.isCancelled { throw CancellationError() }
            if NIODeadline.now() >= deadline {
                throw AffinityClientError(
                    code: .timeout, message: "no WebSocket upgrade from \(url) within \(timeout)", cause: error)
            }
            throw AffinityClientError(
                code: .unavailable, message: "the WebSocket upgrade to \(url) failed", cause: error)
        }
        guard case .webSocket(let asyncChannel) = result else {
            channel.close(promise: nil)
            throw AffinityClientError(
                code: .unavailable, message: "\(url) refused the WebSocket upgrade (see the service's log)")
        }
        try await withTaskCancellationHandler {
            try await session(asyncChannel, body)
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    private enum UpgradeResult: Sendable {
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    private func makeRequestHead(_ endpoint: Endpoint) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        let defaultPort = endpoint.port == (endpoint.secure ? 443 : 80)
        let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
        headers.add(name: "Host", value: defaultPort ? host : "\(host):\(endpoint.port)")
        for (name, value) in self.headers { headers.add(name: name, value: value) }
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.path, headers: headers)
    }

    private static func isAddressLiteral(_ host: String) -> Bool {
        var ipv4 = in_addr()
        var ipv6 = in6_addr()
        return inet_pton(AF_INET, host, &ipv4) == 1 || inet_pton(AF_INET6, host, &ipv6) == 1
    }
}
