import GRPCCore
import Synchronization

/// Applies the knobs to every call: bearer-token or Basic check, injected errors, delays.
struct TestGatewayInterceptor: ServerInterceptor {
    let knobs: TestGatewayKnobs

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        if let issuer = knobs.tokenIssuer {
            let header = request.metadata[stringValues: "authorization"].first(where: { _ in true }) ?? ""
            guard header.hasPrefix("Bearer "), issuer.isValid(String(header.dropFirst("Bearer ".count))) else {
                knobs.state.withLock { $0.callCounts[method, default: 0] += 1 }
                throw RPCError(code: .unauthenticated, message: "Expected a valid bearer token in 'authorization'")
            }
        }
        if let expected = knobs.basicAuthorization {
            let header = request.metadata[stringValues: "authorization"].first(where: { _ in true }) ?? ""
            guard header == expected else {
                knobs.state.withLock { $0.callCounts[method, default: 0] += 1 }
                throw RPCError(code: .unauthenticated, message: "Expected valid Basic credentials in 'authorization'")
            }
        }
        let (injected, delay) = knobs.admit(method)
        if delay > .zero {
            try await Task.sleep(for: delay)
        }
        if let injected { throw injected }
        return try await next(request, context)
    }
}
