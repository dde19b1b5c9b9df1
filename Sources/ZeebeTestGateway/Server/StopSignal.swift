import Foundation

/// Waits until SIGTERM or SIGINT arrives, or standard input reaches end of file.
/// Used by the `zeebe-test-gateway` executable.
public func waitForStop() async {
    let (events, sink) = AsyncStream.makeStream(of: Void.self)
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let sources = [SIGTERM, SIGINT].map { number in
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { sink.yield() }
        source.resume()
        return source
    }
    let stdinReader = DispatchSource.makeReadSource(fileDescriptor: STDIN_FILENO, queue: .global())
    stdinReader.setEventHandler {
        var byte: UInt8 = 0
        if read(STDIN_FILENO, &byte, 1) <= 0 { sink.yield() }
    }
    stdinReader.resume()
    var iterator = events.makeAsyncIterator()
    _ = await iterator.next()
    for source in sources { source.cancel() }
    stdinReader.cancel()
}
