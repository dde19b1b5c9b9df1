import Crypto
import FoundationEssentials
import NIOCore
import NIOHTTP1

/// The WebSocket opening handshake (RFC 6455 section 4.2) for NIO's typed HTTP upgrade, leaving the
/// pipeline after the upgrade to `upgradePipelineHandler` alone.
///
/// NIO's `NIOTypedWebSocketServerUpgrader` answers the handshake the same way but adds its own frame
/// encoder and decoder to every upgraded channel; the server frames in ``AffinityWebSocketHandler``
/// instead (``WebSocketFrameReader``), so this upgrader adds nothing.
struct WebSocketUpgrader<UpgradeResult: Sendable>: NIOTypedHTTPServerProtocolUpgrader {
    /// Refused upgrade requests fail with this (the answer is the caller's, see `shouldUpgrade`).
    enum Refusal: Error {
        /// `Sec-WebSocket-Key` or `Sec-WebSocket-Version` missing, repeated, or not version 13.
        case invalidHandshake
        /// `shouldUpgrade` answered nil.
        case refused
    }

    /// The GUID of RFC 6455 section 1.3, appended to the client's key for `Sec-WebSocket-Accept`.
    static var acceptGUID: String { "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" }

    let supportedProtocol = "websocket"
    /// None in the `Connection` header (the key and the version are checked in ``buildUpgradeResponse``).
    let requiredUpgradeHeaders: [String] = []
    /// Extra headers of the `101` answer, or nil to refuse the upgrade.
    let shouldUpgrade: @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?>
    /// Sets up the upgraded channel's pipeline (the HTTP handlers are gone by then).
    let upgradePipelineHandler: @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<UpgradeResult>

    func buildUpgradeResponse(
        channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        let keys = upgradeRequest.headers[canonicalForm: "sec-websocket-key"]
        let versions = upgradeRequest.headers[canonicalForm: "sec-websocket-version"]
        guard keys.count == 1, let key = keys.first, versions.count == 1, versions.first == "13" else {
            return channel.eventLoop.makeFailedFuture(Refusal.invalidHandshake)
        }
        let accept = Self.acceptValue(forKey: String(key))
        return shouldUpgrade(channel, upgradeRequest).flatMapThrowing { extraHeaders in
            guard var headers = extraHeaders else { throw Refusal.refused }
            headers.replaceOrAdd(name: "Upgrade", value: "websocket")
            headers.add(name: "Sec-WebSocket-Accept", value: accept)
            headers.replaceOrAdd(name: "Connection", value: "upgrade")
            return headers
        }
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        upgradePipelineHandler(channel, upgradeRequest)
    }

    /// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64 of the SHA-1 of the key and the GUID.
    static func acceptValue(forKey key: String) -> String {
        base64(Array(Insecure.SHA1.hash(data: Array((key + acceptGUID).utf8))))
    }

    /// Base64 (RFC 4648 section 4, with padding): Foundation's, as the Zeebe client's Basic credentials.
    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }
}
