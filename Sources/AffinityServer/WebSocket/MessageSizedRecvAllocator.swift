import NIOCore

/// The receive buffers of an upgraded WebSocket channel, sized by its ``InboundReadSizer`` (which
/// ``AffinityWebSocketHandler`` tells about the messages each read completed). Used with
/// `maxMessagesPerRead` 1: one read per event-loop turn.
///
/// A read fills its whole buffer, and NIO gives buffers a power-of-two capacity, so a read takes the
/// sizer's size rounded up to a power of two. NIO's receive buffer pool keeps the channel's first buffer
/// (made before the upgrade, at most ``keptBufferBeforeUpgrade``) and hands it out again when it is no
/// longer referenced and the allocator's size hint is at most its capacity, growing it in place when the
/// hint is larger; without a hint it allocates a buffer for the one read. So this allocator gives a hint
/// only when a read would be read exactly into the kept buffer:
/// - the read's size class is at least the kept buffer's capacity (never more bytes than asked for, which
///   would undo the sizer's fairness),
/// - at most ``largestKeptBuffer`` (what a connection then keeps while idle), and
/// - the connection's last ``steadyReads`` reads had that class: a busy connection whose messages keep their
///   size reads into the same buffer every time (affinity-bench: a new buffer per read was about 9 % of
///   the relay's CPU), and a connection that only said hello and subscribed keeps its small first buffer.
struct MessageSizedRecvAllocator: RecvByteBufferAllocator {
    /// The largest receive buffer a connection has before its upgrade (``AffinityServerChannel``).
    static let keptBufferBeforeUpgrade = 1024
    /// The kept buffer grows up to this; what a once busy connection keeps while idle.
    static let largestKeptBuffer = 4096
    /// Reads of one size class in a row before the kept buffer is used for it.
    static let steadyReads = 4

    let sizer: NIOLoopBoundBox<InboundReadSizer>
    /// The capacity of the buffer NIO keeps, at most: the largest before the upgrade, or the largest hint
    /// given since.
    private var keptBufferSize = Self.keptBufferBeforeUpgrade
    /// The size class of the last reads, and how many reads in a row had it.
    private var lastSizeClass = 0
    private var readsOfLastSizeClass = 0

    init(sizer: NIOLoopBoundBox<InboundReadSizer>) {
        self.sizer = sizer
    }

    /// The capacity NIO gives a buffer for a read of `readSize` bytes.
    static func sizeClass(ofRead readSize: Int) -> Int {
        readSize <= 1 ? 1 : 1 << (Int.bitWidth - (readSize - 1).leadingZeroBitCount)
    }

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: sizer.value.nextReadSize)
    }

    func nextBufferSize() -> Int? {
        hint(for: Self.sizeClass(ofRead: sizer.value.nextReadSize))
    }

    private func hint(for sizeClass: Int) -> Int? {
        let steady = sizeClass == lastSizeClass && readsOfLastSizeClass >= Self.steadyReads
        return steady && sizeClass >= keptBufferSize && sizeClass <= Self.largestKeptBuffer ? sizeClass : nil
    }

    mutating func record(actualReadBytes: Int) -> Bool {
        // called after each read, before the handler sizes the next one: the hint given for this read (if
        // any) may have grown the kept buffer
        let sizeClass = Self.sizeClass(ofRead: sizer.value.nextReadSize)
        if let grown = hint(for: sizeClass) { keptBufferSize = grown }
        if sizeClass == lastSizeClass {
            readsOfLastSizeClass += 1
        } else {
            lastSizeClass = sizeClass
            readsOfLastSizeClass = 1
        }
        sizer.value.read(bytes: actualReadBytes)
        // "may grow": without a size hint NIO allocates the next buffer instead of reusing the kept one
        return true
    }
}
