extension JSONScanner {
    /// The string value of the top-level member `name` in the first bytes of a JSON object that may be
    /// cut off anywhere (an oversized message of which only a prefix was kept).
    ///
    /// Members are read in order until `name` is found with a complete string value; nil when the
    /// prefix ends first, is not an object, or is invalid before that point. The service uses it to
    /// answer a `too_large` message with the `ref` of the outcome it refused.
    public static func stringMember(_ name: String, inPrefix bytes: [UInt8]) -> String? {
        var scanner = JSONScanner(scanning: bytes)
        return scanner.findStringMember(name)
    }

    private mutating func findStringMember(_ wanted: String) -> String? {
        skipWhitespace()
        guard peek() == UInt8(ascii: "{") else { return nil }
        advance()
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\""), let name = try? scanMemberName() else { return nil }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { return nil }
            advance()
            skipWhitespace()
            guard let value = try? scanTopLevelValue() else { return nil }
            if name == wanted { return value.kind == .string ? value.stringValue : nil }
            skipWhitespace()
            guard peek() == UInt8(ascii: ",") else { return nil }
            advance()
        }
    }
}
