import NIOCore
import NIOPosix

/// A TCP server on 127.0.0.1 that accepts connections and reads, but never answers: a hung Redis.
func withSilentServer<T>(_ body: (Int) async throws -> T) async throws -> T {
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
        .bind(host: "127.0.0.1", port: 0).get()
    do {
        let result = try await body(server.localAddress!.port!)
        try? await server.close()
        return result
    } catch {
        try? await server.close()
        throw error
    }
}
