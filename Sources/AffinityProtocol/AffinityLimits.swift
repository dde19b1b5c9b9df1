/// Limits that are part of the protocol rather than configuration.
public enum AffinityLimits {
    /// The longest id or clientId accepted, in UTF-8 bytes.
    public static let maximumIdentifierBytes = 256

    /// Throws `bad_request` unless `value` is non-empty and at most ``maximumIdentifierBytes`` long.
    public static func validateIdentifier(_ value: String, field: String) throws(AffinityError) {
        guard !value.isEmpty else { throw AffinityError.badRequest("\"\(field)\" must not be empty") }
        guard value.utf8.count <= maximumIdentifierBytes else {
            throw AffinityError.badRequest("\"\(field)\" is longer than \(maximumIdentifierBytes) bytes")
        }
    }
}
