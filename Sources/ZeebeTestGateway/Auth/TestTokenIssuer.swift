import Foundation
import Synchronization

/// Issues and checks the test OAuth tokens shared by ``TestOAuthServer`` and the test gateway.
public final class TestTokenIssuer: Sendable {
    struct State {
        var tokens: [String: Date] = [:]
        var issued = 0
    }

    let state = Mutex(State())
    /// The client id the token endpoint accepts.
    public let clientId: String
    /// The client secret the token endpoint accepts.
    public let clientSecret: String
    /// How long issued tokens live.
    public let tokenLifetime: Duration

    /// Creates an issuer for one client.
    public init(clientId: String, clientSecret: String, tokenLifetime: Duration = .seconds(3600)) {
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.tokenLifetime = tokenLifetime
    }

    /// How many tokens were issued.
    public var issuedCount: Int { state.withLock { $0.issued } }

    /// Makes every issued token invalid (the next call with one gets UNAUTHENTICATED).
    public func revokeAllTokens() {
        state.withLock { $0.tokens.removeAll() }
    }

    /// Issues a new token.
    func issue() -> String {
        state.withLock { state in
            state.issued += 1
            let token = "test-token-\(state.issued)-\(UUID().uuidString)"
            state.tokens[token] = Date() + Double(tokenLifetime.components.seconds)
            return token
        }
    }

    /// Whether `token` was issued, is not revoked and has not expired.
    public func isValid(_ token: String) -> Bool {
        state.withLock { state in
            guard let expiry = state.tokens[token] else { return false }
            return expiry > Date()
        }
    }
}
