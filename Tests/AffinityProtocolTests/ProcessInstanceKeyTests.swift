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
}
