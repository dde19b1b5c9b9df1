public import AffinityProtocol
import HTTPTypes
import HummingbirdWSClient
import Logging
public import NIOCore
import NIOPosix
public import NIOWebSocket
import Synchronization

/// What a test WebSocket observed.
public enum SocketEvent: Sendable, Equatable {
    case text(String)
    case binary
    case closed(code: Int?, reason: String?)
    case failed(String)
}

/// Events of a socket, awaited one by one with a timeout.
public final class EventBuffer: Sendable {
    private struct State {
        var events: [SocketEvent] = []
        var finished = false
        /// A close or failure was pushed (it may have been read already).
        var ended = false
        var waiter: CheckedContinuation<SocketEvent?, Never>?
        var generation = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Whether the socket has ended (its last events may still be unread).
    public var isFinished: Bool { state.withLock { $0.finished || $0.ended } }

    public func push(_ event: SocketEvent) {
        let waiter = state.withLock { state -> CheckedContinuation<SocketEvent?, Never>? in
            if case .closed = event { state.ended = true }
            if case .failed = event { state.ended = true }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.events.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    public func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<SocketEvent?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next event, or nil after `timeout` or when the socket is finished.
    public func next(timeout: Duration) async -> SocketEvent? {
        let generation = state.withLock { state -> Int in
            state.generation += 1
            return state.generation
        }
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                let waiter = self.state.withLock { state -> CheckedContinuation<SocketEvent?, Never>? in
                    guard state.generation == generation else { return nil }
                    state.generation += 1
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume(returning: nil)
            }
            let event = await withCheckedContinuation { (continuation: CheckedContinuation<SocketEvent?, Never>) in
                let immediate = state.withLock { state -> SocketEvent?? in
                    if !state.events.isEmpty { return .some(state.events.removeFirst()) }
                    if state.finished || state.generation != generation { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
            group.cancelAll()
            return event
        }
    }
}

/// A WebSocket client for tests: send text or binary, await the next event.
public struct TestSocket: Sendable {
    public enum Command: Sendable {
        case text(String)
        case binary([UInt8])
        case close
    }

    public let events: EventBuffer
    public let commands: AsyncStream<Command>.Continuation

    public func send(_ text: String) {
        commands.yield(.text(text))
    }

    public func send(_ message: AffinityMessage) {
        commands.yield(.text(String(decoding: message.encoded(), as: UTF8.self)))
    }

    public func sendBinary(_ bytes: [UInt8]) {
        commands.yield(.binary(bytes))
    }

    public func close() {
        commands.yield(.close)
    }

    /// The next message, decoded; fails the test on anything else.
    @discardableResult
    public func receive(timeout: Duration = .seconds(5)) async throws -> AffinityMessage {
        let event = await events.next(timeout: timeout)
        guard case .text(let text) = event else {
            throw FixtureError("expected a message, got \(event.map { "\($0)" } ?? "nothing")")
        }
        return try AffinityMessage.decode(Array(text.utf8))
    }

    /// The next raw event.
    public func nextEvent(timeout: Duration = .seconds(5)) async -> SocketEvent? {
        await events.next(timeout: timeout)
    }
}

/// Lets a test stop a socket from reading (to make it a slow consumer) and resume later.
public final class ReadGate: Sendable {
    private let state = Mutex<(open: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    public init() {}

    public func open() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.open = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// `eventLoopGroup`: where the client's channel runs (a load test gives its measuring clients their own).
public func withSocket<T: Sendable>(
    url: String, token: String? = nil, pauseReading: ReadGate? = nil,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    _ body: @Sendable (TestSocket) async throws -> T
) async throws -> T {
    let events = EventBuffer()
    let (commands, commandContinuation) = AsyncStream.makeStream(of: TestSocket.Command.self)
    var headers: HTTPFields = [:]
    if let token { headers[.authorization] = "Bearer \(token)" }
    let configuration = WebSocketClientConfiguration(
        maxFrameSize: 8 << 20, additionalHeaders: headers, autoPing: .disabled)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            do {
                let close = try await WebSocketClient.connect(
                    url: url, configuration: configuration, eventLoopGroup: eventLoopGroup,
                    logger: Logger(label: "test-socket", factory: { _ in SwiftLogNoOpLogHandler() })
                ) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        inner.addTask {
                            for await command in commands {
                                switch command {
                                case .text(let text): try await outbound.write(.text(text))
                                case .binary(let bytes): try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                                case .close:
                                    try await outbound.close(.normalClosure, reason: nil)
                                    return
                                }
                            }
                        }
                        if let pauseReading { await pauseReading.wait() }
                        for try await message in inbound.messages(maxSize: 8 << 20) {
                            switch message {
                            case .text(let text): events.push(.text(text))
                            case .binary: events.push(.binary)
                            }
                        }
                        inner.cancelAll()
                    }
                }
                events.push(.closed(code: close.map { closeCode($0.closeCode) }, reason: close?.reason))
            } catch {
                events.push(.failed("\(error)"))
            }
            events.finish()
        }
        let result: T
        do {
            result = try await body(TestSocket(events: events, commands: commandContinuation))
        } catch {
            pauseReading?.open()
            commandContinuation.yield(.close)
            commandContinuation.finish()
            try? await group.waitForAll()
            throw error
        }
        pauseReading?.open()
        commandContinuation.yield(.close)
        commandContinuation.finish()
        try await group.waitForAll()
        return result
    }
}

public func closeCode(_ code: WebSocketErrorCode) -> Int {
    Int(UInt16(webSocketErrorCode: code))
}
