/// A Zeebe process instance key: a positive int64, written on the wire as a decimal string
/// (`"2251799813685249"`) because int64 does not fit a JavaScript number.
///
/// Accepted text: 1 to 19 ASCII digits, no sign, no leading zero, no whitespace, value in `1...Int64.max`.
public struct ProcessInstanceKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The numeric value, always positive.
    public let value: Int64

    /// Wraps a positive value; nil for zero or negative values.
    public init?(_ value: Int64) {
        guard value > 0 else { return nil }
        self.value = value
    }

    /// Parses the decimal wire form; nil when it is not a valid key.
    public init?(_ text: some StringProtocol) {
        self.init(decimalUTF8: text.utf8)
    }

    /// Parses the decimal wire form from UTF-8 bytes; nil when it is not a valid key.
    public init?(decimalUTF8 bytes: some Collection<UInt8>) {
        guard !bytes.isEmpty, bytes.count <= 19, bytes.first != UInt8(ascii: "0") else { return nil }
        var result: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            result = sum
        }
        self.value = result
    }

    /// The decimal wire form.
    public var description: String { String(value) }

    /// The number of bytes of the decimal wire form.
    public var decimalDigitCount: Int {
        var count = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }

    /// Appends the decimal wire form to `output`, without a `String` in between (a Zeebe key has 16 digits,
    /// one more than a `String` holds without allocating).
    public func appendDecimal(to output: inout [UInt8]) {
        var index = output.count + decimalDigitCount
        output.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: index - output.count))
        var rest = value
        while rest > 0 {
            index -= 1
            output[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
    }

    /// Orders keys by value.
    public static func < (lhs: ProcessInstanceKey, rhs: ProcessInstanceKey) -> Bool { lhs.value < rhs.value }
}
