import AffinityProtocol
import Testing

@Suite("JSONScanner")
struct JSONScannerTests {
    private func scan(_ text: String) throws -> ScannedJSONObject {
        try JSONScanner.scanObject(Array(text.utf8))
    }

    private func rejects(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: AffinityError.self, "\(text)", sourceLocation: sourceLocation) {
            try JSONScanner.scanObject(Array(text.utf8))
        }
    }

    private func rejects(bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: AffinityError.self, sourceLocation: sourceLocation) {
            try JSONScanner.scanObject(bytes)
        }
    }

    @Test func findsTopLevelMembersAndRawSlices() throws {
        let text = #"{"type":"outcome","id":"7","key":"42","variables":{"a":{"b":[1,{"c":null}]},"d":"x"}}"#
        let object = try scan(text)
        #expect(object.members.map(\.name) == ["type", "id", "key", "variables"])
        #expect(object["type"]?.stringValue == "outcome")
        #expect(object["id"]?.kind == .string)
        let variables = try #require(object["variables"])
        #expect(variables.kind == .object)
        #expect(
            String(decoding: object.rawBytes(of: variables), as: UTF8.self) == #"{"a":{"b":[1,{"c":null}]},"d":"x"}"#)
        #expect(object["missing"] == nil)
    }

    @Test func findsDuplicateNamesInSmallAndLargeObjects() throws {
        rejects(#"{"type":"ack","id":"1","type":"ack"}"#)
        // Around and past the size where the names go into a set: a duplicate of the first, of one before and
        // of one after the switch, and of the last is refused; distinct names are accepted.
        for count in [15, 16, 17, 40] {
            let names = (0..<count).map { "m\($0)" }
            let members = names.map { #""\#($0)":\#($0.count)"# }
            let object = try scan("{" + members.joined(separator: ",") + "}")
            #expect(object.members.map(\.name) == names)
            for duplicate in [0, 14, 16, count - 1] where duplicate < count {
                rejects("{" + (members + ["\"m\(duplicate)\":0"]).joined(separator: ",") + "}")
            }
        }
    }

    @Test func keepsNestedValuesByteForByte() throws {
        let variables = "{ \"s\" : \"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\" ,\n\t\"n\": -1.5e+10 , \"e\":[] , \"o\":{} }"
        let object = try scan("{\"variables\":\(variables)}")
        let slice = try #require(object["variables"])
        #expect(Array(object.rawBytes(of: slice)) == Array(variables.utf8))
    }

    @Test func decodesEscapesInTopLevelStrings() throws {
        let object = try scan(#"{"a":"q\"b\\s\/n\nt\tu\u0041\u00e9\ud83d\ude00"}"#)
        #expect(object["a"]?.stringValue == "q\"b\\s/n\nt\tuAé😀")
    }

    @Test func acceptsRawUnicode() throws {
        let object = try scan(#"{"name":"Zoë 日本 😀"}"#)
        #expect(object["name"]?.stringValue == "Zoë 日本 😀")
    }

    @Test func acceptsWhitespaceAroundEverything() throws {
        let object = try scan(" \n\t\r{ \"a\" \n: \r 1 \t, \"b\":true,\"c\":false , \"d\" : null } \n")
        #expect(object.members.map(\.name) == ["a", "b", "c", "d"])
        #expect(object["a"]?.kind == .number)
        #expect(object["b"]?.kind == .bool)
        #expect(object["d"]?.kind == .null)
    }

    @Test func acceptsEmptyObject() throws {
        #expect(try scan("{}").members.isEmpty)
        #expect(try scan(" { } ").members.isEmpty)
    }

    @Test(arguments: [
        "0", "-0", "1", "-1", "10", "1.5", "0.25", "1e5", "1E5", "1e+5", "1e-5", "-1.5E-10",
        "123456789012345678901234567890",
    ])
    func acceptsValidNumbers(_ number: String) throws {
        #expect(try scan(#"{"n":\#(number)}"#)["n"]?.kind == .number)
    }

    @Test(arguments: [
        "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "1.5.5", "--1", "1ee5",
    ])
    func rejectsInvalidNumbers(_ number: String) {
        rejects(#"{"n":\#(number)}"#)
    }

    @Test func rejectsDuplicateTopLevelMembers() {
        rejects(#"{"a":1,"a":2}"#)
        rejects(#"{"type":"ack","id":"1","type":"hello"}"#)
    }

    @Test func allowsDuplicatesInsideOpaqueValues() throws {
        let object = try scan(#"{"variables":{"a":1,"a":2}}"#)
        #expect(object["variables"]?.kind == .object)
    }

    @Test func rejectsNonObjects() {
        for text in ["[]", "\"text\"", "1", "true", "null", "", "   "] {
            rejects(text)
        }
    }

    @Test func rejectsTruncatedInput() {
        let full = #"{"type":"outcome","id":"7","variables":{"a":[1,2,{"b":"c"}]}}"#
        let bytes = Array(full.utf8)
        for length in 0..<bytes.count {
            rejects(bytes: Array(bytes[0..<length]))
        }
    }

    @Test func rejectsGarbage() {
        for text in [
            "{a:1}", "{'a':1}", #"{"a":1,}"#, #"{"a" 1}"#, #"{"a":}"#, #"{"a":1 "b":2}"#, #"{"a":[1,]}"#,
            #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":True}"#, #"{"a":1}x"#, #"{"a":1}{}"#, #"{"a":"x\q"}"#,
            #"{"a":"\u12"}"#, #"{"a":"\u12G4"}"#, "{\"a\":\"tab\there\"}", "{\"a\":\"new\nline\"}", #"{"a":[}"#,
            #"{"a":{]}"#, "{\u{0}}", "\u{FEFF}{}",
        ] {
            rejects(text)
        }
    }

    @Test func rejectsInvalidUTF8() {
        let prefix = Array(#"{"a":""#.utf8)
        let suffix = Array(#""}"#.utf8)
        let invalid: [[UInt8]] = [
            [0xFF], [0xC0, 0x80], [0xC2], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], [0x80], [0xE2, 0x82],
        ]
        for sequence in invalid {
            rejects(bytes: prefix + sequence + suffix)
        }
    }

    @Test func rejectsUnpairedSurrogateEscapes() {
        rejects(#"{"a":"\ud83d"}"#)
        rejects(#"{"a":"\ude00"}"#)
        rejects(#"{"a":"\ud83d\u0041"}"#)
    }

    @Test func limitsNestingDepth() throws {
        let depth = JSONScanner.maximumDepth
        let ok = "{\"v\":" + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}"
        _ = try scan(ok)
        let deep = "{\"v\":" + String(repeating: "[", count: depth + 5) + String(repeating: "]", count: depth + 5) + "}"
        rejects(deep)
        let hostile = "{\"v\":" + String(repeating: "[", count: 100_000)
        rejects(hostile)
    }

    @Test func validateAcceptsAnySingleValue() throws {
        try JSONScanner.validate(Array("[1,2]".utf8))
        try JSONScanner.validate(Array(" \"x\" ".utf8))
        #expect(throws: AffinityError.self) { try JSONScanner.validate(Array("[1,2".utf8)) }
    }

    @Test func errorsAreBadRequest() {
        do {
            _ = try JSONScanner.scanObject(Array("{".utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .badRequest)
            #expect(error.message.contains("invalid JSON"))
        }
    }

    /// Found while triaging FuzzJSONScanner's first crash: `{"a":1e999}` passed the scanner, but
    /// Foundation's parser (and so a Swift client decoding the variables) refuses a number beyond a
    /// 64-bit float.
    @Test func numbersBeyondA64BitFloatAreRefusedAsFoundationRefusesThem() throws {
        for number in ["1e999", "1.8e308", "-1e309", "100E307", String(repeating: "9", count: 400)] {
            rejects(#"{"a":\#(number)}"#)
            rejects(#"{"a":{"b":[1,\#(number)]}}"#)
        }
        for number in [
            "1e308", "1.7976931348623157e308", "1e-999", "0e999", "-0.0", "123456789012345678901234567890123",
        ] {
            #expect(try scan(#"{"a":\#(number)}"#)["a"]?.kind == .number, "\(number)")
        }
    }

    /// Found by FuzzJSONScanner: Foundation's parser reads trailing commas; RFC 8259 does not allow
    /// them, and the scanner keeps refusing them (a client in another language would too).
    @Test func trailingCommasAreRefusedThoughFoundationReadsThem() {
        rejects(#"{"name":"Zoë 日本 😀",}"#)
        rejects(#"{"a":[1,2,]}"#)
        rejects(#"{"a":{"b":1 , }}"#)
    }
}

@Suite("JSONScanner prefix")
struct JSONScannerPrefixTests {
    @Test func findsAMemberBeforeTheCut() {
        let text = #"{"type":"outcome","id":"job-7","key":"42","variables":{"blob":"xxxxxxxx"#
        #expect(JSONScanner.stringMember("id", inPrefix: Array(text.utf8)) == "job-7")
        #expect(JSONScanner.stringMember("key", inPrefix: Array(text.utf8)) == "42")
        #expect(JSONScanner.stringMember("type", inPrefix: Array(text.utf8)) == "outcome")
    }

    @Test func decodesEscapesInTheValue() {
        let text = #"{ "id" : "a\"b\u0041" , "variables":["#
        #expect(JSONScanner.stringMember("id", inPrefix: Array(text.utf8)) == "a\"bA")
    }

    @Test(arguments: [
        #"{"variables":{"a":1},"id":"#,  // cut inside the wanted value
        #"{"variables":{"a":"#,  // cut before the member
        #"{"id":7}"#,  // not a string
        #"["id","x"]"#,  // not an object
        #"{"other":"x" "id":"y"}"#,  // invalid before the member
        "",
    ])
    func returnsNilWhenTheMemberIsNotCompletelyThere(_ text: String) {
        #expect(JSONScanner.stringMember("id", inPrefix: Array(text.utf8)) == nil)
    }

    @Test func readsPastCompleteNestedValues() {
        let text = #"{"variables":{"nested":[1,{"id":"inner"}]},"id":"outer","tail":"#
        #expect(JSONScanner.stringMember("id", inPrefix: Array(text.utf8)) == "outer")
    }
}
