import AffinityProtocol
import Foundation

// libFuzzer target: PeerRequestValidation, the envelope check of a forwarded outcome.
//
// The input is split at NUL bytes into id, key, variables and origin replica. Invariants:
// - a request it passes has a 1...256-byte id, a valid key, a non-empty origin and variables whose
//   first and last non-whitespace bytes are `{` and `}`;
// - a JSON object the scanner accepts always passes looksLikeJSONObject.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPeerRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let fields = bytes.split(separator: 0, maxSplits: 3, omittingEmptySubsequences: false).map { Array($0) }
    func field(_ index: Int) -> [UInt8] { index < fields.count ? fields[index] : [] }
    let id = String(decoding: field(0), as: UTF8.self)
    let key = String(decoding: field(1), as: UTF8.self)
    let variables = Data(field(2))
    let origin = String(decoding: field(3), as: UTF8.self)

    if PeerRequestValidation.problem(id: id, key: key, variables: variables, originReplica: origin) == nil {
        guard (1...PeerRequestValidation.maxIDLength).contains(id.utf8.count), ProcessInstanceKey(key) != nil,
            !origin.isEmpty
        else { fatalError("an invalid envelope passed: id \(id.debugDescription), key \(key.debugDescription)") }
        let trimmed = variables.drop(while: isWhitespace).reversed().drop(while: isWhitespace)
        guard trimmed.last == UInt8(ascii: "{"), trimmed.first == UInt8(ascii: "}"), trimmed.count >= 2 else {
            fatalError("variables that are not an object passed")
        }
    }
    if (try? JSONScanner.scanObject(field(2))) != nil, !PeerRequestValidation.looksLikeJSONObject(variables) {
        fatalError("a JSON object the scanner accepts was refused by looksLikeJSONObject")
    }
    return 0
}

private func isWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
}
