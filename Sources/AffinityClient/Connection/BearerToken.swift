import AffinityProtocol
import Foundation

/// Where the bearer token sent on the WebSocket upgrade comes from.
public enum BearerToken: Sendable, Hashable {
    /// A token given directly (e.g. read by the caller from a secret store).
    case value(String)
    /// A file holding the token (a mounted Kubernetes Secret); read on every connection attempt, so
    /// a rotated secret is picked up at the next reconnect. The first non-empty line that does not
    /// start with `#` is the token.
    case file(path: String)

    /// The token text.
    /// - Throws: ``AffinityClientError`` with code `unauthorized` when the file cannot be read or holds no token.
    public func resolve() throws(AffinityClientError) -> String {
        switch self {
        case .value(let token):
            let trimmed = token.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else {
                throw AffinityClientError(code: .unauthorized, message: "the bearer token is empty")
            }
            return trimmed
        case .file(let path):
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw AffinityClientError(
                    code: .unauthorized, message: "cannot read the token file \(path)", cause: error)
            }
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if !trimmed.isEmpty && !trimmed.hasPrefix("#") { return trimmed }
            }
            throw AffinityClientError(code: .unauthorized, message: "the token file \(path) holds no token")
        }
    }
}
