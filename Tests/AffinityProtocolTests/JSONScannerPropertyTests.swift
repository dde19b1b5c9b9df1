import AffinityProtocol
import Foundation
import Testing

/// Properties of the scanner against Foundation's JSON parser, on generated input (seeded, so a
/// failure reproduces): what the scanner accepts, Foundation accepts; and objects within the
/// limits that Foundation accepts (no duplicate top-level name, nesting within
/// ``JSONScanner/maximumDepth``), the scanner accepts too, with the same top-level names.
@Suite("JSONScanner properties")
struct JSONScannerPropertyTests {
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func generatedObjectsAreAcceptedByBoth(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        for _ in 0..<400 {
            let (text, names) = JSONTextGenerator.object(depth: 0, random: &random, topLevel: true)
            let bytes = Array(text.utf8)
            let parsed = try JSONSerialization.jsonObject(with: Data(bytes))
            let dictionary = try #require(parsed as? [String: Any], "\(text)")
            let scanned = try JSONScanner.scanObject(bytes)
            #expect(scanned.members.map(\.name) == names, "\(text)")
            #expect(Set(dictionary.keys) == Set(names))
        }
    }

    @Test func objectsFoundationWritesAreAccepted() throws {
        var random = SeededRandom(seed: 99)
        for _ in 0..<300 {
            var object: [String: Any] = [:]
            for index in 0..<random.next(below: 6) {
                object["k\(index)-\(JSONTextGenerator.plainString(random: &random))"] =
                    JSONTextGenerator.foundationValue(depth: 0, random: &random)
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            let scanned = try JSONScanner.scanObject(Array(data))
            #expect(Set(scanned.members.map(\.name)) == Set(object.keys))
        }
    }

    @Test(arguments: [11, 12, 13] as [UInt64])
    func whatTheScannerAcceptsFoundationAccepts(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        var accepted = 0
        var refused = 0
        for _ in 0..<300 {
            let (text, _) = JSONTextGenerator.object(depth: 0, random: &random, topLevel: true)
            var bytes = Array(text.utf8)
            JSONTextGenerator.mutate(&bytes, random: &random)
            let foundation = try? JSONSerialization.jsonObject(with: Data(bytes))
            if (try? JSONScanner.scanObject(bytes)) != nil {
                accepted += 1
                #expect(foundation is [String: Any], "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
            } else {
                refused += 1
            }
        }
        // both sides of the property were exercised
        #expect(accepted > 20)
        #expect(refused > 20)
    }

    @Test func theOnlyObjectsRefusedThatFoundationReadsAreOverTheLimits() throws {
        let duplicate = Array(#"{"a":1,"a":2}"#.utf8)
        #expect(try JSONSerialization.jsonObject(with: Data(duplicate)) is [String: Any])
        #expect(throws: AffinityError.self) { try JSONScanner.scanObject(duplicate) }

        let depth = JSONScanner.maximumDepth
        let deep = Array(
            ("{\"a\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}").utf8)
        #expect(throws: AffinityError.self) { try JSONScanner.scanObject(deep) }
        let within = Array(
            ("{\"a\":" + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}").utf8
        )
        _ = try JSONScanner.scanObject(within)
    }
}

/// A small deterministic generator (SplitMix64), so that every run checks the same inputs.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}

/// Writes random JSON text: every token form RFC 8259 allows (escapes, surrogate pairs, exponents,
/// whitespace between tokens), within the scanner's limits.
enum JSONTextGenerator {
    static func object(depth: Int, random: inout SeededRandom, topLevel: Bool = false) -> (String, [String]) {
        var names: [String] = []
        var members: [String] = []
        for index in 0..<random.next(below: topLevel ? 7 : 4) {
            let name = "\(plainString(random: &random))\(index)"
            names.append(name)
            members.append(
                space(&random) + quoted(name, random: &random) + space(&random) + ":"
                    + value(depth: depth + 1, random: &random))
        }
        return ("{" + members.joined(separator: ",") + space(&random) + "}", names)
    }

    static func value(depth: Int, random: inout SeededRandom) -> String {
        let choice = depth > 5 ? 2 + random.next(below: 5) : random.next(below: 7)
        let body: String
        switch choice {
        case 0: body = object(depth: depth, random: &random).0
        case 1:
            body =
                "["
                + (0..<random.next(below: 4)).map { _ in value(depth: depth + 1, random: &random) }.joined(
                    separator: ",")
                + space(&random) + "]"
        case 2: body = quoted(unicodeString(random: &random), random: &random)
        case 3: body = number(random: &random)
        case 4: body = ["true", "false"][random.next(below: 2)]
        case 5: body = "null"
        default: body = quoted(plainString(random: &random), random: &random)
        }
        return space(&random) + body + space(&random)
    }

    static func plainString(random: inout SeededRandom) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz_-")
        return String((0..<(1 + random.next(below: 8))).map { _ in letters[random.next(below: letters.count)] })
    }

    static func unicodeString(random: inout SeededRandom) -> String {
        let pool: [Character] = [
            "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1F}", "é", "日", "😀", "\u{7F}", "\u{FFFD}",
        ]
        return String((0..<random.next(below: 10)).map { _ in pool[random.next(below: pool.count)] })
    }

    /// `text` as a JSON string, with each character written plainly or as an escape.
    static func quoted(_ text: String, random: inout SeededRandom) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += random.next(below: 2) == 0 ? "\\\\" : "\\u005C"
            case "\n": output += random.next(below: 2) == 0 ? "\\n" : "\\u000a"
            case "\t": output += "\\t"
            case "/": output += random.next(below: 2) == 0 ? "/" : "\\/"
            case _ where scalar.value < 0x20: output += String(format: "\\u%04X", scalar.value)
            case _ where scalar.value > 0xFFFF && random.next(below: 2) == 0:
                let value = scalar.value - 0x10000
                output += String(format: "\\u%04x\\u%04x", 0xD800 + (value >> 10), 0xDC00 + (value & 0x3FF))
            case _ where scalar.value > 0x7F && scalar.value <= 0xFFFF && random.next(below: 3) == 0:
                output += String(format: "\\u%04X", scalar.value)
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }

    static func number(random: inout SeededRandom) -> String {
        var text = random.next(below: 3) == 0 ? "-" : ""
        text += random.next(below: 4) == 0 ? "0" : String(1 + random.next(below: 999_999))
        if random.next(below: 2) == 0 { text += "." + String(random.next(below: 10_000)) }
        if random.next(below: 3) == 0 {
            text +=
                ["e", "E"][random.next(below: 2)] + ["", "+", "-"][random.next(below: 3)]
                + String(random.next(below: 30))
        }
        return text
    }

    static func space(_ random: inout SeededRandom) -> String {
        [" ", "", "", "\n", "\t", "\r\n", ""][random.next(below: 7)]
    }

    static func foundationValue(depth: Int, random: inout SeededRandom) -> Any {
        switch depth > 3 ? 2 + random.next(below: 4) : random.next(below: 6) {
        case 0:
            var object: [String: Any] = [:]
            for _ in 0..<random.next(below: 4) {
                object[unicodeString(random: &random)] = foundationValue(depth: depth + 1, random: &random)
            }
            return object
        case 1: return (0..<random.next(below: 4)).map { _ in foundationValue(depth: depth + 1, random: &random) }
        case 2: return unicodeString(random: &random)
        case 3: return Double(random.next(below: 2_000_000)) / 7 - 100_000
        case 4: return random.next(below: 2) == 0
        default: return NSNull()
        }
    }

    /// Breaks a valid text in one of the ways a hostile peer might: a byte replaced, inserted or
    /// deleted, the text cut short, or a piece repeated.
    static func mutate(_ bytes: inout [UInt8], random: inout SeededRandom) {
        let interesting: [UInt8] = Array(#"{}[]",:\u0 -.eE+1"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC0, 0xED, 0xF4, 0xFF]
        guard !bytes.isEmpty else { return }
        let index = random.next(below: bytes.count)
        switch random.next(below: 5) {
        case 0: bytes[index] = interesting[random.next(below: interesting.count)]
        case 1: bytes.insert(interesting[random.next(below: interesting.count)], at: index)
        case 2: bytes.remove(at: index)
        case 3: bytes.removeSubrange(index...)
        default:
            let end = min(bytes.count, index + 1 + random.next(below: 8))
            bytes.insert(contentsOf: bytes[index..<end], at: index)
        }
    }
}
