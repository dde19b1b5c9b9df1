import NIOCore
import NIOPosix
import Synchronization

/// A cancellable sleep on a NIO event loop timer: cancelling it removes the timer at once, where
/// `Task.sleep` leaves one behind per call until it would have fired (the peer server races one sleep
/// against every delivery it handles, with deadlines of several seconds).
enum PeerEventLoopSleep {
    private enum Phase: Sendable {
        case pending
        case sleeping(CheckedContinuation<Void, any Error>, Scheduled<Void>)
        case done
    }

    /// Returns once `duration` has passed (a timer on `eventLoop`); throws `CancellationError` as soon as the
    /// task is cancelled.
    static func sleep(for duration: Duration, on eventLoop: any EventLoop) async throws {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let phase = Mutex<Phase>(.pending)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let scheduled = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                    let fired: CheckedContinuation<Void, any Error>? = phase.withLock { phase in
                        guard case .sleeping(let continuation, _) = phase else { return nil }
                        phase = .done
                        return continuation
                    }
                    fired?.resume()
                }
                let cancelled = phase.withLock { phase -> Bool in
                    guard case .pending = phase else { return true }
                    phase = .sleeping(continuation, scheduled)
                    return false
                }
                if cancelled {
                    scheduled.cancel()
                    continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let sleeping: (CheckedContinuation<Void, any Error>, Scheduled<Void>)? = phase.withLock { phase in
                switch phase {
                case .pending:
                    phase = .done
                    return nil
                case .sleeping(let continuation, let scheduled):
                    phase = .done
                    return (continuation, scheduled)
                case .done:
                    return nil
                }
            }
            if let (continuation, scheduled) = sleeping {
                scheduled.cancel()
                continuation.resume(throwing: CancellationError())
            }
        }
    }
}
