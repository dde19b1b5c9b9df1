import AffinityProtocol
import Testing

@Suite("ProcessInstanceKey")
struct ProcessInstanceKeyTests {
    @Test(arguments: ["1", "42", "2251799813685249", "9223372036854775807"])
    func acceptsPositiveDecimalInt64(_ text: String) throws {
        let key = try #require(ProcessInstanceKey(text))
        #expect(key.description == text)
    }

    @Test(arguments: [
        "", "0", "00", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x1", "9223372036854775808", "99999999999999999999",
        "١٢", "12a",
    ])
    func rejectsEverythingElse(_ text: String) {
        #expect(ProcessInstanceKey(text) == nil)
    }

    @Test func valueInit() {
        #expect(ProcessInstanceKey(Int64(0)) == nil)
        #expect(ProcessInstanceKey(Int64(-5)) == nil)
        #expect(ProcessInstanceKey(Int64.max)?.value == Int64.max)
    }

    @Test func decimalBytesAreTheDescriptionsAtEveryDigitCount() throws {
        var values: [Int64] = [1, 9, 10, 99, 100, 2_251_799_813_685_249, 999_999_999_999_999, 1_000_000_000_000_000, .max]
        var power: Int64 = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1]
        }
        for value in values {
            let key = try #require(ProcessInstanceKey(value))
            var output: [UInt8] = [UInt8(ascii: "x")]
            key.appendDecimal(to: &output)
            #expect(output == [UInt8(ascii: "x")] + Array(String(value).utf8), "\(value)")
            #expect(key.decimalDigitCount == String(value).utf8.count, "\(value)")
        }
    }
}
