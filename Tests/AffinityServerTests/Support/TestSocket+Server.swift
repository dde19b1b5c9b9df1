import AffinityProtocol
import AffinityTestSupport
import Testing

extension TestSocket {
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
