/// A validating JSON scanner that reads only the top level of an object.
///
/// It checks the whole text against RFC 8259 (UTF-8, strings, escapes, numbers, nesting) without
/// building any values, and reports each top-level member as a name plus the byte range of its
/// raw value. The service uses it to read the envelope (`type`, `id`, `key`) of a message and to
/// pass `variables` on byte for byte, never rebuilding it as a dictionary.
///
/// ```swift
/// let object = try JSONScanner.scanObject(Array(#"{"type":"ack","id":"7"}"#.utf8))
/// object["type"]?.stringValue // "ack"
/// ```
public struct JSONScanner {
    /// Nesting deeper than this is rejected, so hostile input cannot exhaust the stack.
    public static let maximumDepth = 512

    private let bytes: [UInt8]
    private var index: Int = 0

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    init(scanning bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Reads a member name (the scanner is at its opening quote).
    mutating func scanMemberName() throws(AffinityError) -> String {
        try scanString(decode: true) ?? ""
    }

    /// Reads one member value of the top-level object.
    mutating func scanTopLevelValue() throws(AffinityError) -> JSONValueSlice {
        try scanValue(depth: 1)
    }

    mutating func advance() {
        index += 1
    }

    /// Validates `bytes` as one JSON object (surrounding whitespace allowed) and returns its
    /// top-level members in document order. Throws `bad_request` for invalid JSON, a value that is
    /// not an object, or a duplicate top-level member name.
    public static func scanObject(_ bytes: [UInt8]) throws(AffinityError) -> ScannedJSONObject {
        var scanner = JSONScanner(bytes: bytes)
        scanner.skipWhitespace()
        guard scanner.index < bytes.count else { throw scanner.failure("empty message") }
        guard bytes[scanner.index] == UInt8(ascii: "{") else {
            throw AffinityError.badRequest("the message must be a JSON object")
        }
        let members = try scanner.scanTopLevelObject()
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else { throw scanner.failure("unexpected data after the object") }
        return ScannedJSONObject(bytes: bytes, members: members)
    }

    /// Validates `bytes` as exactly one JSON value of any kind (surrounding whitespace allowed).
    public static func validate(_ bytes: [UInt8]) throws(AffinityError) {
        var scanner = JSONScanner(bytes: bytes)
        scanner.skipWhitespace()
        _ = try scanner.scanValue(depth: 0)
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else { throw scanner.failure("unexpected data after the value") }
    }

    // MARK: - Grammar

    /// Up to this many top-level members, a duplicate name is found by comparing with the names read so far:
    /// no hashing and no set to allocate for the few members of every protocol message. Past it, a set of the
    /// names keeps a large object linear.
    static let linearDuplicateCheckLimit = 16

    private mutating func scanTopLevelObject() throws(AffinityError) -> [ScannedJSONObject.Member] {
        index += 1  // "{"
        var members: [ScannedJSONObject.Member] = []
        // room for every protocol message's members in one allocation (growing from empty takes three for four)
        members.reserveCapacity(6)
        // Built only for an object with more than `linearDuplicateCheckLimit` members.
        var names: Set<String>?
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return members
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw failure("expected a member name") }
            let name = try scanString(decode: true) ?? ""
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw failure("expected ':' after a member name") }
            index += 1
            skipWhitespace()
            let value = try scanValue(depth: 1)
            let duplicate: Bool
            if members.count < Self.linearDuplicateCheckLimit {
                duplicate = members.contains { $0.name == name }
            } else {
                var set = names ?? Set(members.map(\.name))
                names = nil  // the set is uniquely referenced: the insert does not copy it
                duplicate = !set.insert(name).inserted
                names = set
            }
            guard !duplicate else {
                throw AffinityError.badRequest("duplicate member \"\(name)\"")
            }
            members.append(.init(name: name, value: value))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "}"):
                index += 1
                return members
            default:
                throw failure("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func scanValue(depth: Int) throws(AffinityError) -> JSONValueSlice {
        guard let byte = peek() else { throw failure("unexpected end of input") }
        let start = index
        switch byte {
        case UInt8(ascii: "{"):
            try scanNestedObject(depth: depth + 1)
            return JSONValueSlice(kind: .object, range: start..<index, string: nil)
        case UInt8(ascii: "["):
            try scanArray(depth: depth + 1)
            return JSONValueSlice(kind: .array, range: start..<index, string: nil)
        case UInt8(ascii: "\""):
            let decoded = try scanString(decode: depth <= 1)
            return JSONValueSlice(kind: .string, range: start..<index, string: decoded)
        case UInt8(ascii: "t"):
            try scanLiteral("true")
            return JSONValueSlice(kind: .bool, range: start..<index, string: nil)
        case UInt8(ascii: "f"):
            try scanLiteral("false")
            return JSONValueSlice(kind: .bool, range: start..<index, string: nil)
        case UInt8(ascii: "n"):
            try scanLiteral("null")
            return JSONValueSlice(kind: .null, range: start..<index, string: nil)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
            return JSONValueSlice(kind: .number, range: start..<index, string: nil)
        default:
            throw failure("unexpected character")
        }
    }

    private mutating func scanNestedObject(depth: Int) throws(AffinityError) {
        guard depth <= Self.maximumDepth else { throw failure("nesting deeper than \(Self.maximumDepth)") }
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw failure("expected a member name") }
            _ = try scanString(decode: false)
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw failure("expected ':' after a member name") }
            index += 1
            skipWhitespace()
            _ = try scanValue(depth: depth)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "}"):
                index += 1
                return
            default:
                throw failure("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func scanArray(depth: Int) throws(AffinityError) {
        guard depth <= Self.maximumDepth else { throw failure("nesting deeper than \(Self.maximumDepth)") }
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            _ = try scanValue(depth: depth)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "]"):
                index += 1
                return
            default:
                throw failure("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func scanLiteral(_ literal: StaticString) throws(AffinityError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw failure("unexpected end of input") }
        let matches = literal.withUTF8Buffer { expected in
            var offset = 0
            while offset < count {
                if bytes[index + offset] != expected[offset] { return false }
                offset += 1
            }
            return true
        }
        guard matches else { throw failure("invalid literal") }
        index += count
    }

    /// Numbers up to this many bytes without an exponent are always within a 64-bit float.
    private static let alwaysFiniteNumberLength = 300

    private mutating func scanNumber() throws(AffinityError) {
        let start = index
        var hasExponent = false
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw failure("invalid number") }
        index += 1
        if first != UInt8(ascii: "0") {
            while let byte = peek(), isDigit(byte) { index += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let byte = peek(), isDigit(byte) else { throw failure("invalid number: digit expected after '.'") }
            while let byte = peek(), isDigit(byte) { index += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let byte = peek(), isDigit(byte) else { throw failure("invalid number: digit expected in exponent") }
            while let byte = peek(), isDigit(byte) { index += 1 }
            hasExponent = true
        }
        // RFC 8259 section 6 lets parsers limit the range; Foundation (and so every Swift client
        // decoding the variables) refuses a number beyond a 64-bit float, so it is refused here
        if hasExponent || index - start > Self.alwaysFiniteNumberLength {
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw failure("number out of range (beyond a 64-bit float)")
            }
        }
    }

    /// Scans a string starting at its opening quote; returns the decoded text when `decode` is set.
    ///
    /// A string without escapes (every name and value of the protocol's messages) is made straight from its
    /// bytes: no buffer in between, and no allocation at all for up to 15 bytes (Swift's small strings).
    private mutating func scanString(decode: Bool) throws(AffinityError) -> String? {
        index += 1  // opening quote
        // the text decoded up to the last escape (empty, with no storage, until the first)
        var decoded: [UInt8] = []
        var escaped = false
        var segmentStart = index
        while true {
            guard index < bytes.count else { throw failure("unterminated string") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                let end = index
                index += 1
                guard decode else { return nil }
                guard escaped else { return string(from: segmentStart..<end) }
                appendBytes(segmentStart..<end, to: &decoded)
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                if decode { appendBytes(segmentStart..<index, to: &decoded) }
                escaped = true
                index += 1
                try scanEscape(into: &decoded, decode: decode)
                segmentStart = index
            case 0..<0x20:
                throw failure("control character in a string")
            case 0x20..<0x80:
                index += 1
            default:
                try scanUTF8Sequence()
            }
        }
    }

    /// The text of `range` (validated UTF-8), without a copy in between.
    private func string(from range: Range<Int>) -> String {
        bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }

    private func appendBytes(_ range: Range<Int>, to text: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { text.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
    }

    private mutating func scanEscape(into output: inout [UInt8], decode: Bool) throws(AffinityError) {
        guard let byte = peek() else { throw failure("unterminated escape") }
        index += 1
        let simple: UInt8?
        switch byte {
        case UInt8(ascii: "\""): simple = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): simple = UInt8(ascii: "\\")
        case UInt8(ascii: "/"): simple = UInt8(ascii: "/")
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"): simple = nil
        default: throw failure("invalid escape")
        }
        if let simple {
            if decode { output.append(simple) }
            return
        }
        var scalar = try scanHex4()
        if (0xD800...0xDBFF).contains(scalar) {
            // a high surrogate must be followed by an escaped low surrogate
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { throw failure("unpaired surrogate in a \\u escape") }
            index += 2
            let low = try scanHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw failure("unpaired surrogate in a \\u escape") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(scalar) {
            throw failure("unpaired surrogate in a \\u escape")
        }
        if decode, let unicode = Unicode.Scalar(scalar) {
            output.append(contentsOf: Array(String(Character(unicode)).utf8))
        }
    }

    private mutating func scanHex4() throws(AffinityError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("invalid hex digit in a \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// Validates one multi-byte UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF).
    private mutating func scanUTF8Sequence() throws(AffinityError) {
        let lead = bytes[index]
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upperBound = 0x9F
        case 0xF0:
            length = 4
            lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upperBound = 0x8F
        default: throw failure("invalid UTF-8")
        }
        guard index + length <= bytes.count else { throw failure("truncated UTF-8 sequence") }
        let second = bytes[index + 1]
        guard second >= lowerBound, second <= upperBound else { throw failure("invalid UTF-8") }
        var offset = 2
        while offset < length {
            guard bytes[index + offset] & 0xC0 == 0x80 else { throw failure("invalid UTF-8") }
            offset += 1
        }
        index += length
    }

    // MARK: - Small helpers

    func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func failure(_ reason: String) -> AffinityError {
        if index >= bytes.count {
            return .badRequest("invalid JSON: \(reason) (at end of input)")
        }
        return .badRequest("invalid JSON: \(reason) at byte \(index)")
    }
}
