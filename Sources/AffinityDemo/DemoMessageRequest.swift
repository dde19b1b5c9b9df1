import Foundation
import ZeebeClient

/// The body of `POST /message/{name}`: `{"correlationKey":"c","processInstanceKey":"K","variables":{...},"messageId":"m"}`.
/// The key may be a decimal string (as the protocol sends keys) or a JSON number.
struct DemoMessageRequest: Sendable {
    struct Invalid: Error {
        let message: String
    }

    let correlationKey: String
    let processInstanceKey: Int64
    let variables: ZeebeVariables
    let messageId: String?

    init(json bytes: [UInt8]) throws(Invalid) {
        guard let value = try? JSONSerialization.jsonObject(with: Data(bytes)), let object = value as? [String: Any]
        else { throw Invalid(message: "the body must be a JSON object") }
        guard let correlationKey = object["correlationKey"] as? String, !correlationKey.isEmpty else {
            throw Invalid(message: "correlationKey (a non-empty string) is required")
        }
        let key: Int64?
        switch object["processInstanceKey"] {
        case let text as String: key = Int64(text)
        case let number as NSNumber: key = number.int64Value
        default: key = nil
        }
        guard let key, key > 0 else {
            throw Invalid(message: "processInstanceKey (a positive decimal string) is required")
        }
        var variables = ZeebeVariables.empty
        if let raw = object["variables"] {
            guard raw is [String: Any], let data = try? JSONSerialization.data(withJSONObject: raw),
                let parsed = try? ZeebeVariables(json: String(decoding: data, as: UTF8.self))
            else { throw Invalid(message: "variables must be a JSON object") }
            variables = parsed
        }
        self.correlationKey = correlationKey
        self.processInstanceKey = key
        self.variables = variables
        self.messageId = object["messageId"] as? String
    }
}
