import Testing

@testable import AffinityServer

@Suite("InboundReadSizer")
struct InboundReadSizerTests {
    /// One read of `bytes` that completed `messages` messages.
    func read(_ sizer: inout InboundReadSizer, bytes: Int, messages: Int) {
        sizer.read(bytes: bytes)
        for _ in 0..<messages { sizer.messageCompleted() }
        sizer.readCompleted()
    }

    @Test func theNextReadTakesAboutOneMessageOfTheSizeJustSeen() {
        var sizer = InboundReadSizer()
        #expect(sizer.nextReadSize == InboundReadSizer.initial)
        // a flood of 300-byte outcomes: 1024 bytes held three
        read(&sizer, bytes: 1024, messages: 3)
        #expect(sizer.nextReadSize == 341 * InboundReadSizer.messagesPerRead)
        read(&sizer, bytes: sizer.nextReadSize, messages: InboundReadSizer.messagesPerRead)
        #expect(sizer.nextReadSize == 341 * InboundReadSizer.messagesPerRead)
    }

    @Test func aClientsReadTakesAboutSixteenMessages() {
        var sizer = InboundReadSizer()
        // acks of about 60 bytes: 1024 bytes held 17
        sizer.read(bytes: 1024)
        for _ in 0..<17 { sizer.messageCompleted() }
        sizer.readCompleted(messagesPerRead: InboundReadSizer.clientMessagesPerRead)
        #expect(sizer.nextReadSize == 60 * InboundReadSizer.clientMessagesPerRead)
        // the same messages from a worker: one per read (at the minimum size)
        sizer.read(bytes: 960)
        for _ in 0..<16 { sizer.messageCompleted() }
        sizer.readCompleted()
        #expect(sizer.nextReadSize == InboundReadSizer.minimum)
    }

    @Test func tinyMessagesAreReadAtTheMinimum() {
        var sizer = InboundReadSizer()
        read(&sizer, bytes: 1024, messages: 40)
        #expect(sizer.nextReadSize == InboundReadSizer.minimum)
        read(&sizer, bytes: 256, messages: 10)
        #expect(sizer.nextReadSize == InboundReadSizer.minimum)
    }

    @Test func aMessageLargerThanTheReadDoublesItUpToTheMaximum() {
        var sizer = InboundReadSizer()
        read(&sizer, bytes: 1024, messages: 3)
        var size = sizer.nextReadSize
        // a 1 MiB outcome: full reads that complete nothing
        for _ in 0..<20 {
            read(&sizer, bytes: sizer.nextReadSize, messages: 0)
            size = min(InboundReadSizer.maximum, size * 2)
            #expect(sizer.nextReadSize == size)
        }
        #expect(sizer.nextReadSize == InboundReadSizer.maximum)
        // its last read completes it: large messages keep large reads
        read(&sizer, bytes: InboundReadSizer.maximum, messages: 1)
        #expect(sizer.nextReadSize == InboundReadSizer.maximum)
        // small ones again
        read(&sizer, bytes: 1200, messages: 4)
        #expect(sizer.nextReadSize == 300 * InboundReadSizer.messagesPerRead)
    }

    @Test func aShortReadWithoutAMessageKeepsTheSize() {
        var sizer = InboundReadSizer()
        // a slow sender: part of a message arrived
        read(&sizer, bytes: 100, messages: 0)
        #expect(sizer.nextReadSize == InboundReadSizer.initial)
    }

    @Test func sizesStayWithinTheBoundsForAnyRead() {
        var sizer = InboundReadSizer()
        for (bytes, messages) in [(1, 1), (Int.max / 2, 1), (65536, 0), (0, 0), (70000, 1), (3, 0)] {
            read(&sizer, bytes: bytes, messages: messages)
            #expect((InboundReadSizer.minimum...InboundReadSizer.maximum).contains(sizer.nextReadSize))
        }
    }
}
