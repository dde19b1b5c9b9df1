import AffinityProtocol

/// A text frame of the Node package's wire protocol (zeebe-node-affinity), accepted on `/` with
/// `--legacy-protocol`: `{"type":"REGISTER_CLIENT"}`, `{"type":"REGISTER_WORKER"}` and
/// `{"type":"PROCESS_OUTCOME","processInstanceKey":K,"variables":{...}}`, where K is a decimal string
/// (int64 keys) or a number. The package never expects an answer.
enum LegacyMessage: Equatable, Sendable {
    case registerClient
    case registerWorker
    /// An outcome; `variables` are the raw bytes of its JSON object.
    case processOutcome(key: ProcessInstanceKey, variables: [UInt8])

    /// Parses one frame; throws `bad_request` or `unknown_type` for anything else (the session logs and
    /// counts it: the package reads no answer).
    static func decode(_ bytes: [UInt8]) throws(AffinityError) -> LegacyMessage {
        let object = try JSONScanner.scanObject(bytes)
        guard let type = object["type"]?.stringValue else {
            throw AffinityError.badRequest("a legacy frame needs a string \"type\"")
        }
        switch type {
        case "REGISTER_CLIENT":
            return .registerClient
        case "REGISTER_WORKER":
            return .registerWorker
        case "PROCESS_OUTCOME":
            guard let keyValue = object["processInstanceKey"] else {
                throw AffinityError.badRequest("PROCESS_OUTCOME needs \"processInstanceKey\"")
            }
            let text: String
            switch keyValue.kind {
            case .string: text = keyValue.stringValue ?? ""
            case .number: text = String(decoding: object.rawBytes(of: keyValue), as: UTF8.self)
            default: throw AffinityError.badRequest("\"processInstanceKey\" must be a decimal string or a number")
            }
            guard let key = ProcessInstanceKey(text) else {
                throw AffinityError.badRequest(
                    "\"processInstanceKey\" \(text.prefix(32)) is not a process instance key")
            }
            guard let variables = object["variables"], variables.kind == .object else {
                throw AffinityError.badRequest("PROCESS_OUTCOME needs an object \"variables\"", ref: text)
            }
            return .processOutcome(key: key, variables: Array(object.rawBytes(of: variables)))
        default:
            throw AffinityError(code: .unknownType, message: "unknown legacy message type \"\(type.prefix(32))\"")
        }
    }

    /// The frame every legacy client receives for an outcome, as the Node server sent it:
    /// `{"type":"PROCESS_OUTCOME","processInstanceKey":"K","variables":{...}}` with the variables verbatim.
    static func outcomeFrame(_ outcome: Outcome) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(outcome.variables.count + 80)
        output.append(contentsOf: #"{"type":"PROCESS_OUTCOME","processInstanceKey":""#.utf8)
        outcome.key.appendDecimal(to: &output)
        output.append(contentsOf: #"","variables":"#.utf8)
        output.append(contentsOf: outcome.variables)
        output.append(UInt8(ascii: "}"))
        return output
    }
}
