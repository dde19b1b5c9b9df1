/// How many bytes the next read from one WebSocket connection takes off its socket, without I/O:
/// about ``messagesPerRead`` messages' worth, so that a connection sending as fast as its socket
/// allows gets that many messages handled per event-loop turn, like every other connection of the
/// loop, and the rest of its data waits in its own TCP buffers (whose window then stops the sender).
///
/// An event loop handles every ready socket's read, then every task those reads started, before it
/// looks at its sockets again. Whatever one read brings (NIO's default: up to four reads of 64 KiB,
/// hundreds of small outcomes) is handled before the next turn, so one flooding connection made
/// every other connection on its loop wait for hundreds of deliveries per turn.
///
/// The size follows the messages: after a read that completed messages, the next read takes
/// ``messagesPerRead`` times the bytes per message of that read; a full read that completed none
/// (a message larger than the read) doubles it, so that large messages still arrive in few reads.
/// Always within ``minimum`` and ``maximum``.
///
/// One message per read is for the connections whose messages fan out into parallel work: a worker's
/// outcomes each start a delivery, which may need the store. A worker whose outcomes were all handled at
/// once on the event loop (each pushed to a local subscriber, none waiting for its session) reads like a
/// client until one needs its session again. A client's messages (subscribe, ack, unsubscribe) are handled one
/// after the other by its session, so a client cannot take more of its loop by sending faster; its reads
/// take up to ``clientMessagesPerRead`` messages, which saves a read (a system call and a loop turn) per
/// message under load (affinity-bench: about 9 us of replica CPU per outcome life cycle with one per read).
struct InboundReadSizer: Equatable {
    /// Messages one read should bring, at most about (workers whose session has work, and every connection
    /// before its `hello`).
    static let messagesPerRead = 1
    /// Messages one read of a client connection (or of a worker whose session is idle) should bring, at most about.
    static let clientMessagesPerRead = 16
    /// The smallest read: many tiny messages per read are cheap, and a read must hold a frame header.
    static let minimum = 256
    /// The largest read (NIO's default maximum).
    static let maximum = 64 << 10
    /// The first read after the upgrade.
    static let initial = 1024

    /// The size of the next read.
    private(set) var nextReadSize = initial
    /// Bytes the current read took, once it happened.
    private var bytesRead = 0
    /// Messages the current read completed.
    private var messages = 0

    /// The socket returned `bytes` for a read of ``nextReadSize``.
    mutating func read(bytes: Int) {
        bytesRead += bytes
    }

    /// A read completed a message.
    mutating func messageCompleted() {
        messages += 1
    }

    /// The read and the messages it completed are handled: sizes the next read for about
    /// `messagesPerRead` messages.
    mutating func readCompleted(messagesPerRead: Int = Self.messagesPerRead) {
        defer {
            bytesRead = 0
            messages = 0
        }
        if messages > 0 {
            let perMessage = max(1, bytesRead / messages)
            let (wanted, overflow) = perMessage.multipliedReportingOverflow(by: max(1, messagesPerRead))
            nextReadSize = overflow ? Self.maximum : min(Self.maximum, max(Self.minimum, wanted))
        } else if bytesRead >= nextReadSize {
            // inside a message larger than the read
            nextReadSize = min(Self.maximum, nextReadSize * 2)
        }
    }
}
