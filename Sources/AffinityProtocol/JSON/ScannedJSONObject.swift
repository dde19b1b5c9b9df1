/// The kind of a JSON value found by ``JSONScanner``.
public enum JSONValueKind: Sendable, Hashable {
    /// `{...}`
    case object
    /// `[...]`
    case array
    /// `"..."`
    case string
    /// A number in JSON syntax.
    case number
    /// `true` or `false`.
    case bool
    /// `null`.
    case null
}

/// One raw JSON value inside a scanned buffer: its kind, its byte range and, for strings at the
/// top level of the scanned object, the decoded text.
public struct JSONValueSlice: Sendable, Hashable {
    /// The kind of value.
    public let kind: JSONValueKind
    /// The bytes of the value in the scanned buffer, including quotes or brackets.
    public let range: Range<Int>
    /// The decoded (unescaped) text when the value is a top-level string member, else nil.
    public let stringValue: String?

    init(kind: JSONValueKind, range: Range<Int>, string: String?) {
        self.kind = kind
        self.range = range
        self.stringValue = string
    }
}

/// The top level of a validated JSON object: member names with the raw slices of their values.
public struct ScannedJSONObject: Sendable {
    /// One top-level member.
    public struct Member: Sendable, Hashable {
        /// The decoded member name.
        public let name: String
        /// Where its value is.
        public let value: JSONValueSlice
    }

    /// The scanned buffer.
    public let bytes: [UInt8]
    /// Members in document order; names are unique.
    public let members: [Member]

    /// The value of the member called `name`, if present.
    public subscript(name: String) -> JSONValueSlice? {
        members.first(where: { $0.name == name })?.value
    }

    /// The raw bytes of a value.
    public func rawBytes(of value: JSONValueSlice) -> ArraySlice<UInt8> {
        bytes[value.range]
    }
}
