import Foundation

/// Short random identifiers for worker ids.
enum UUIDText {
    /// The first 8 hex digits of a random UUID.
    static func random() -> String { String(UUID().uuidString.prefix(8)).lowercased() }
}
