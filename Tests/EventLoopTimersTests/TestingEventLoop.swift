import NIOEmbedded

/// Runs `body` with an event loop whose time stands still until the test advances it, then shuts the loop
/// down once the work queued on it is done (a timer cancelled off the loop completes its promise there; a
/// shutdown that overtook it would leak that promise).
func withTestingEventLoop(_ body: (NIOAsyncTestingEventLoop) async throws -> Void) async throws {
    let loop = NIOAsyncTestingEventLoop()
    do {
        try await body(loop)
    } catch {
        await loop.run()
        await loop.shutdownGracefully()
        throw error
    }
    await loop.run()
    await loop.shutdownGracefully()
}
