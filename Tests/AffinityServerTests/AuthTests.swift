import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Auth")
struct AuthTests {
    static let upgradeHeaders: HTTPFields = [
        .connection: "Upgrade", .upgrade: "websocket", .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==",
        .secWebSocketVersion: "13",
    ]

    func withTokenServer<T: Sendable>(_ body: @escaping @Sendable (TestServer, URL) async throws -> T) async throws -> T
    {
        try await withTemporaryDirectory { directory in
            let clients = directory.appendingPathComponent("clients")
            let workers = directory.appendingPathComponent("workers")
            try write("# client tokens\nclient-token-1\n\n  client-token-2  \n", to: clients)
            try write("worker-token\n", to: workers)
            return try await withServer({
                $0.clientTokenFile = clients.path
                $0.workerTokenFile = workers.path
            }) { server in try await body(server, directory) }
        }
    }

    func status(
        _ port: Int, _ path: String, token: String?, upgrade: Bool = false, post body: String? = nil
    ) async throws
        -> HTTPResponse.Status
    {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            var headers: HTTPFields = upgrade ? Self.upgradeHeaders : [:]
            if let token { headers[.authorization] = "Bearer \(token)" }
            if let body {
                return try await client.post(path, headers: headers, body: ByteBuffer(string: body)).status
            }
            return try await client.get(path, headers: headers).status
        }
    }

    @Test func upgradeNeedsAValidToken() async throws {
        try await withTokenServer { server, _ in
            #expect(try await status(server.port, "/v1/ws", token: nil, upgrade: true) == .unauthorized)
            #expect(try await status(server.port, "/v1/ws", token: "wrong", upgrade: true) == .unauthorized)
            for token in [nil, "wrong"] as [String?] {
                try await withSocket(server, token: token) { socket in
                    guard case .failed = await socket.nextEvent() else {
                        throw TestFailure("the upgrade should have been refused")
                    }
                }
            }
        }
    }

    @Test func tokensGrantTheirRoleOnly() async throws {
        try await withTokenServer { server, _ in
            try await withSocket(server, token: "client-token-2") { socket in
                socket.send(.hello(role: .worker, clientId: "x"))
                try await socket.expectError(.forbidden)
                try await socket.hello(.client)
            }
            try await withSocket(server, token: "worker-token") { socket in
                socket.send(.hello(role: .client, clientId: "x"))
                try await socket.expectError(.forbidden)
                try await socket.hello(.worker)
            }
            let outcome = #"{"id":"a1","key":"5","variables":{}}"#
            #expect(try await status(server.port, "/v1/outcomes", token: "worker-token", post: outcome) == .ok)
            #expect(try await status(server.port, "/v1/outcomes", token: "client-token-1", post: outcome) == .forbidden)
            #expect(try await status(server.port, "/v1/outcomes", token: nil, post: outcome) == .unauthorized)
            #expect(try await status(server.port, "/v1/outcomes", token: "nope", post: outcome) == .unauthorized)
            #expect(try await status(server.port, "/v1/outcomes/5?timeout=1", token: "client-token-1") == .ok)
            #expect(try await status(server.port, "/v1/outcomes/5?timeout=0.1", token: "worker-token") == .forbidden)
            #expect(try await status(server.port, "/v1/outcomes/5?timeout=0.1", token: nil) == .unauthorized)
        }
    }

    @Test func tokenFilesAreReloadedWhenTheyChange() async throws {
        try await withTokenServer { server, directory in
            let outcome = #"{"id":"r","key":"6","variables":{}}"#
            #expect(
                try await status(server.port, "/v1/outcomes", token: "rotated-worker-token", post: outcome)
                    == .unauthorized)
            try write("worker-token\nrotated-worker-token\n", to: directory.appendingPathComponent("workers"))
            #expect(try await status(server.port, "/v1/outcomes", token: "rotated-worker-token", post: outcome) == .ok)
            try write("rotated-worker-token\n", to: directory.appendingPathComponent("workers"))
            #expect(
                try await status(server.port, "/v1/outcomes", token: "worker-token", post: outcome) == .unauthorized)
        }
    }

    @Test func withoutTokenFilesEverythingIsOpen() async throws {
        try await withServer { server in
            try await withSocket(server) { socket in try await socket.hello(.client) }
            try await withSocket(server, token: "anything") { socket in try await socket.hello(.worker) }
        }
    }

    @Test func emptyOrMissingTokenFilesAreRejected() async throws {
        try await withTemporaryDirectory { directory in
            let empty = directory.appendingPathComponent("empty")
            try write("\n# only a comment\n", to: empty)
            for path in [empty.path, directory.appendingPathComponent("missing").path] {
                #expect(throws: AffinityError.self) { _ = try TokenFile(path: path) }
            }
        }
    }
}
