import AffinityTestSupport
import Foundation
import NIOCore
import NIOPosix

/// Sends `request` on a new loopback connection to `port` and reads the response until `isComplete` says it has
/// all it needs, or the server closes the connection; returns what was read.
func exchangeOnLoopback(
    port: Int, request: String, isComplete: (ByteBuffer) -> Bool = { _ in false }
) async throws -> String {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    var response = ByteBuffer()
    try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: request))
        for try await var chunk in inbound {
            response.writeBuffer(&chunk)
            if isComplete(response) { break }
        }
    }
    return String(buffer: response)
}

/// `GET path` on loopback `port` over plain HTTP/1.1 with `Connection: close`; returns the status code and the body.
func httpGet(port: Int, path: String) async throws -> (status: Int, body: String) {
    let text = try await exchangeOnLoopback(
        port: port, request: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    guard let statusLine = text.split(separator: "\r\n").first,
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { throw FixtureError("not an HTTP response: \(text.prefix(200))") }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}

/// The value of a Prometheus sample whose line starts with `prefix` (name and labels), or 0 when absent.
func metricValue(_ metrics: String, _ prefix: String) -> Double {
    for line in metrics.split(separator: "\n") where line.hasPrefix(prefix) {
        if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { return value }
    }
    return 0
}

/// A WebSocket upgrade request for `path`; returns the response head (status line and headers).
func httpUpgrade(port: Int, path: String) async throws -> String {
    let text = try await exchangeOnLoopback(
        port: port,
        request: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        isComplete: { String(buffer: $0).contains("\r\n\r\n") })
    return String(text[..<(text.range(of: "\r\n\r\n")?.lowerBound ?? text.endIndex)])
}
