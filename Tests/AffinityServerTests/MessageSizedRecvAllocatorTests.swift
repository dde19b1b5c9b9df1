import NIOCore
import NIOEmbedded
import Testing

@testable import AffinityServer

@Suite("MessageSizedRecvAllocator")
struct MessageSizedRecvAllocatorTests {
    /// NIO's receive buffer pool of one channel, with the replica's allocator, as `BaseSocketChannel` uses it.
    struct Reads {
        let sizer = NIOLoopBoundBox(InboundReadSizer(), eventLoop: EmbeddedEventLoop())
        var pool: NIOPooledRecvBufferAllocator

        init() {
            pool = NIOPooledRecvBufferAllocator(capacity: 1, recvAllocator: MessageSizedRecvAllocator(sizer: sizer))
        }

        /// One read that fills its buffer and completes `messages` messages; returns the buffer's capacity and
        /// the address of its storage.
        mutating func read(messages: Int, messagesPerRead: Int = InboundReadSizer.messagesPerRead) -> (Int, UInt) {
            let (buffer, filled) = pool.buffer(allocator: ByteBufferAllocator()) { buffer -> Int in
                buffer.writeRepeatingByte(UInt8(ascii: "x"), count: buffer.writableBytes)
                return buffer.readableBytes
            }
            pool.record(actualReadBytes: filled)
            for _ in 0..<messages { sizer.value.messageCompleted() }
            sizer.value.readCompleted(messagesPerRead: messagesPerRead)
            let address = buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
            return (buffer.capacity, address)
        }
    }

    @Test func aReadTakesTheSizedBytesRoundedToAPowerOfTwo() {
        var reads = Reads()
        let (first, _) = reads.read(messages: 3)  // 1024 bytes held three messages
        #expect(first == InboundReadSizer.initial)
        #expect(reads.sizer.value.nextReadSize == 341)
        let (second, _) = reads.read(messages: 2)  // 512 bytes held two: the next read is 256
        #expect(second == 512)
        let (third, _) = reads.read(messages: 1)
        #expect(third == InboundReadSizer.minimum)
    }

    /// Reads that fill their buffer with one message each: the next read keeps the size.
    func steadyReads(_ reads: inout Reads, count: Int) -> [(Int, UInt)] {
        (0..<count).map { _ in reads.read(messages: 1) }
    }

    @Test func messagesOfASteadySizeAreReadIntoTheKeptBuffer() {
        var reads = Reads()
        let observed = steadyReads(&reads, count: 8)
        #expect(observed.allSatisfy { $0.0 == 1024 })
        let kept = observed[0].1  // NIO keeps the channel's first buffer
        let steady = MessageSizedRecvAllocator.steadyReads
        #expect(observed[steady...].allSatisfy { $0.1 == kept })
    }

    @Test func theKeptBufferGrowsForASteadyLargerSize() {
        var reads = Reads()
        _ = reads.read(messages: 0)  // inside a message larger than 1 KiB: the next read takes 2 KiB
        let observed = steadyReads(&reads, count: 8)
        #expect(observed.allSatisfy { $0.0 == 2048 })
        let steady = MessageSizedRecvAllocator.steadyReads
        #expect(observed[steady...].allSatisfy { $0.1 == observed[steady].1 })
    }

    @Test func aSmallerReadGetsASmallerBufferNotTheKeptLargerOne() {
        var reads = Reads()
        _ = steadyReads(&reads, count: 6)  // the kept buffer is in use at 1 KiB
        // 1024 bytes held four messages: the next read takes 256 bytes, in a buffer of its own
        #expect(reads.read(messages: 4).0 == 1024)
        #expect(reads.read(messages: 1).0 == InboundReadSizer.minimum)
    }

    @Test func readsAboveTheLargestKeptSizeDoNotGrowTheKeptBuffer() {
        var reads = Reads()
        for _ in 0..<3 { _ = reads.read(messages: 0) }  // a large message: the next read takes 8 KiB
        #expect(steadyReads(&reads, count: 8).allSatisfy { $0.0 == 8192 })
        // 8 KiB held eight messages: back to reads of 1 KiB, then into the kept buffer, still 1 KiB
        #expect(reads.read(messages: 8).0 == 8192)
        let observed = steadyReads(&reads, count: 8)
        #expect(observed.allSatisfy { $0.0 == 1024 })
    }

    @Test func aBufferStillReferencedIsNotReadInto() {
        var reads = Reads()
        let kept = steadyReads(&reads, count: 6)[5].1
        // a message queued for the session still holds part of the kept buffer
        let (buffer, _) = reads.pool.buffer(allocator: ByteBufferAllocator()) { buffer in
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: buffer.writableBytes)
        }
        reads.pool.record(actualReadBytes: buffer.readableBytes)
        reads.sizer.value.messageCompleted()
        reads.sizer.value.readCompleted()
        #expect(buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } == kept)
        let held = buffer.getSlice(at: 0, length: 10)
        let (capacity, address) = reads.read(messages: 1)
        #expect(capacity == 1024)
        #expect(address != kept)
        #expect(held.map { String(buffer: $0) } == String(repeating: "x", count: 10))
    }
}
