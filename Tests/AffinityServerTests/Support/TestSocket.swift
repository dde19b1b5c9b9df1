import AffinityProtocol
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import Synchronization
import Testing

/// What a test WebSocket observed.
enum SocketEvent: Sendable, Equatable {
    case text(String)
    case binary
    case closed(code: Int?, reason: String?)
    case failed(String)
}

/// Events of a socket, awaited one by one with a timeout.
final class EventBuffer: Sendable {
    private struct State {
        var events: [SocketEvent] = []
        var finished = false
        var waiter: CheckedContinuation<SocketEvent?, Never>?
        var generation = 0
    }

    private let state = Mutex(State())

    func push(_ event: SocketEvent) {
        let waiter = state.withLock { state -> CheckedContinuation<SocketEvent?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.events.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<SocketEvent?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next event, or nil after `timeout` or when the socket is finished.
    func next(timeout: Duration) async -> SocketEvent? {
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
struct TestSocket: Sendable {
    enum Command: Sendable {
        case text(String)
        case binary([UInt8])
        case close
    }

    let events: EventBuffer
    let commands: AsyncStream<Command>.Continuation

    func send(_ text: String) {
        commands.yield(.text(text))
    }

    func send(_ message: AffinityMessage) {
        commands.yield(.text(String(decoding: message.encoded(), as: UTF8.self)))
    }

    func sendBinary(_ bytes: [UInt8]) {
        commands.yield(.binary(bytes))
    }

    func close() {
        commands.yield(.close)
    }

    /// The next message, decoded; fails the test on anything else.
    @discardableResult
    func receive(
        timeout: Duration = .seconds(5), sourceLocation: SourceLocation = #_sourceLocation
    ) async throws
        -> AffinityMessage
    {
        let event = await events.next(timeout: timeout)
        guard case .text(let text) = event else {
            throw TestFailure("expected a message, got \(event.map { "\($0)" } ?? "nothing")")
        }
        return try AffinityMessage.decode(Array(text.utf8))
    }

    /// The next raw event.
    func nextEvent(timeout: Duration = .seconds(5)) async -> SocketEvent? {
        await events.next(timeout: timeout)
    }

    /// Expects no message within `duration`.
    func expectSilence(
        for duration: Duration = .milliseconds(300), sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let event = await events.next(timeout: duration)
        #expect(event == nil, "unexpected \(String(describing: event))", sourceLocation: sourceLocation)
    }

    /// Sends hello and expects welcome.
    func hello(
        _ role: PeerRole, clientID: String = "test-client", sourceLocation: SourceLocation = #_sourceLocation
    )
        async throws
    {
        send(.hello(role: role, clientId: clientID))
        let answer = try await receive()
        #expect(answer == .welcome(replica: "test-replica", protocolVersion: 1), sourceLocation: sourceLocation)
    }

    /// Expects an error frame and returns its code and ref.
    @discardableResult
    func expectError(
        _ code: AffinityError.Code, ref: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> String {
        let message = try await receive()
        guard case .error(let actual, let text, let actualRef) = message else {
            Issue.record("expected an error \(code), got \(message)", sourceLocation: sourceLocation)
            return ""
        }
        #expect(actual == code, "\(text)", sourceLocation: sourceLocation)
        if let ref { #expect(actualRef == ref, sourceLocation: sourceLocation) }
        return text
    }
}

/// Opens a WebSocket to `server` for the duration of `body`; closes it afterwards.
/// With `pauseReading`, the client reads nothing until `body` returns or calls `resume`.
func withSocket<T: Sendable>(
    _ server: TestServer, token: String? = nil, pauseReading: ReadGate? = nil,
    _ body: @Sendable (TestSocket) async throws -> T
) async throws -> T {
    try await withSocket(url: server.webSocketURL, token: token, pauseReading: pauseReading, body)
}

/// Lets a test stop a socket from reading (to make it a slow consumer) and resume later.
final class ReadGate: Sendable {
    private let state = Mutex<(open: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func open() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.open = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func wait() async {
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
func withSocket<T: Sendable>(
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
                    url: url, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: quietLogger
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

func closeCode(_ code: WebSocketErrorCode) -> Int {
    Int(UInt16(webSocketErrorCode: code))
}
