import AffinityProtocol
import Foundation

/// Checks a forwarded outcome's envelope before it reaches the handler: the same rules the WebSocket
/// side applies to a worker's outcome, without parsing the variables (the service then makes the request an
/// `Outcome`, whose initializer scans them).
enum PeerRequestValidation {
    /// The longest id accepted: the protocol's limit, as on the WebSocket side.
    static let maxIDLength = AffinityLimits.maximumIdentifierBytes

    /// Returns why the request is malformed, or `nil` when it is well-formed.
    static func problem(id: String, key: String, variables: Data, originReplica: String) -> String? {
        if id.isEmpty || id.utf8.count > Self.maxIDLength {
            return "id must be 1 to \(Self.maxIDLength) bytes"
        }
        if ProcessInstanceKey(key) == nil {
            return "key must be a positive decimal int64"
        }
        if !Self.looksLikeJSONObject(variables) {
            return "variables must be a JSON object"
        }
        if originReplica.isEmpty {
            return "origin_replica must not be empty"
        }
        return nil
    }

    /// The first and last non-whitespace bytes are `{` and `}`: a cheap first check that refuses an obviously
    /// wrong payload before the full scan of the variables.
    static func looksLikeJSONObject(_ bytes: Data) -> Bool {
        let whitespace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        guard let first = bytes.firstIndex(where: { !whitespace.contains($0) }),
            let last = bytes.lastIndex(where: { !whitespace.contains($0) })
        else { return false }
        return bytes[first] == UInt8(ascii: "{") && bytes[last] == UInt8(ascii: "}") && first < last
    }
}
