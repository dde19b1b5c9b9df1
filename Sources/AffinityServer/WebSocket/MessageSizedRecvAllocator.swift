import NIOCore

/// The receive buffers of an upgraded WebSocket channel, sized by its ``InboundReadSizer`` (which
/// ``AffinityWebSocketHandler`` tells about the messages each read completed). Used with
/// `maxMessagesPerRead` 1: one read per event-loop turn.
///
/// Every read gets a new buffer of exactly the size asked for: NIO reuses a kept buffer whenever it
/// is at least as large as the next size, and a read fills the whole buffer, so a reused 64 KiB
/// buffer would read 64 KiB of small messages at once.
struct MessageSizedRecvAllocator: RecvByteBufferAllocator {
    let sizer: NIOLoopBoundBox<InboundReadSizer>

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: sizer.value.nextReadSize)
    }

    func nextBufferSize() -> Int? {
        // no size hint: NIO then does not look for a kept buffer to reuse
        nil
    }

    mutating func record(actualReadBytes: Int) -> Bool {
        sizer.value.read(bytes: actualReadBytes)
        // "may grow": NIO allocates the next buffer instead of reusing the last one
        return true
    }
}
