import AffinityProtocol
import Foundation

// libFuzzer target: JSONScanner against Foundation's JSON parser.
//
// - Whatever the scanner accepts as an object, JSONSerialization accepts as a dictionary with the
//   same top-level names, and every member's raw range is itself one valid JSON value.
// - The reverse for objects within the limits: a dictionary JSONSerialization reads, written back
//   by JSONSerialization, is accepted by the scanner unless it nests deeper than
//   JSONScanner.maximumDepth. (The text itself may be refused: Foundation also reads trailing
//   commas, `{"a":1,}`, which RFC 8259 does not allow and the scanner refuses.)
// - `validate` agrees with JSONSerialization (fragments allowed) in the accepting direction.
// - The envelope decoders built on the scanner never trap, whatever they are given.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONScanner(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let foundation = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    do {
        let object = try JSONScanner.scanObject(bytes)
        guard let dictionary = foundation as? [String: Any] else {
            fatalError("the scanner accepted an object that Foundation refuses: \(describe(bytes))")
        }
        let names = Set(object.members.map(\.name))
        guard names == Set(dictionary.keys), names.count == object.members.count else {
            fatalError("top-level names differ from Foundation's: \(describe(bytes))")
        }
        for member in object.members {
            guard member.value.range.lowerBound >= 0, member.value.range.upperBound <= bytes.count else {
                fatalError("a member range lies outside the input: \(describe(bytes))")
            }
            do {
                try JSONScanner.validate(Array(bytes[member.value.range]))
            } catch {
                fatalError("a member's raw value is not valid JSON on its own: \(describe(bytes))")
            }
        }
    } catch {
        // refused: fine, the reverse direction is checked on Foundation's own writing below
    }
    if let dictionary = foundation as? [String: Any],
        let written = try? JSONSerialization.data(withJSONObject: dictionary, options: [.sortedKeys])
    {
        do {
            _ = try JSONScanner.scanObject(Array(written))
        } catch  where !error.message.contains("nesting deeper") {
            fatalError("the scanner refused an object Foundation wrote (\(error.message)): \(describe(Array(written)))")
        } catch {}
    }
    if (try? JSONScanner.validate(bytes)) != nil, foundation == nil {
        fatalError("validate accepted a value that Foundation refuses: \(describe(bytes))")
    }
    _ = try? AffinityMessage.decode(bytes)
    _ = try? Outcome.decodeDelivery(bytes)
    return 0
}

private func describe(_ bytes: [UInt8]) -> String {
    String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription
}
