import NIOCore

// libFuzzer target: RedisReplyReader (hiredis's reply reader behind the project's Swift wrapper),
// fed what a hostile or broken Redis could send.
//
// The first input byte picks a chunk size; the rest is fed once whole and once in chunks of that
// size, as a socket might split it. Invariants: no crash, no leak (AddressSanitizer), and the same
// replies (and the same protocol error, or none) either way.

/// The reader's bound on one incomplete reply, small so that the fuzzer reaches it.
private let bufferLimit = 1 << 16

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let chunk = Int(data[0] % 32) + 1
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let whole = read([input[...]])
    let split = read(stride(from: 0, to: input.count, by: chunk).map { input[$0..<min($0 + chunk, input.count)] })
    guard whole == split else {
        fatalError("chunking changed the replies: \(whole) vs \(split)")
    }
    return 0
}

/// The replies read from `chunks`, and whether a protocol error ended the reading.
private func read(_ chunks: [ArraySlice<UInt8>]) -> Outcome {
    let reader = RedisReplyReader(maximumBufferedBytes: bufferLimit)
    var outcome = Outcome()
    do {
        for chunk in chunks {
            try reader.feed(ByteBuffer(bytes: chunk))
            // one reply at a time, as RedisChannelHandler takes them: the replies before a
            // protocol error are answered, whatever the split
            while let reply = try reader.next() { outcome.replies.append(reply) }
        }
    } catch {
        outcome.failed = true
    }
    return outcome
}

private struct Outcome: Equatable {
    var replies: [RedisReply] = []
    var failed = false
}
