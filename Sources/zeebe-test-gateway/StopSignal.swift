import Foundation
import UnixSignals

/// Waits until SIGTERM or SIGINT arrives, or standard input reaches end of file.
func waitForStop() async {
    let (events, sink) = AsyncStream.makeStream(of: Void.self)
    // A blocking read needs its own thread; it only reports end of file.
    let reader = Thread {
        var byte: UInt8 = 0
        while read(STDIN_FILENO, &byte, 1) > 0 {}
        sink.yield()
    }
    reader.start()
    await withTaskGroup(of: Void.self) { group in
        group.addTask {
            for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return }
        }
        group.addTask {
            var iterator = events.makeAsyncIterator()
            _ = await iterator.next()
        }
        await group.next()
        group.cancelAll()
    }
}
