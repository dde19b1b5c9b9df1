import Foundation

/// Process variables as Zeebe carries them: a JSON document whose root is an object.
///
/// Build them from any `Encodable` value or from raw JSON, and read them back as a `Decodable`
/// type or as the raw JSON string.
///
/// ```swift
/// struct Order: Codable { var orderId: String; var total: Double }
/// let variables = try ZeebeVariables(Order(orderId: "o-1", total: 9.5))
/// let raw = try ZeebeVariables(json: #"{"orderId":"o-1"}"#)
/// let order = try variables.decode(Order.self)
/// ```
public struct ZeebeVariables: Sendable, Hashable, CustomStringConvertible {
    /// The JSON text (empty means "no variables", which the gateway treats as `{}`).
    public let json: String

    /// No variables.
    public static let empty = ZeebeVariables(trustedJSON: "")

    /// Wraps raw JSON after checking that it is an object (or empty).
    /// - Throws: ``ZeebeError`` with code `INVALID_VARIABLES` when it is not a JSON object.
    public init(json: String) throws {
        let trimmed = json.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty {
            self.json = ""
            return
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ZeebeError(code: .invalidVariables, message: "variables are not valid JSON", cause: error)
        }
        guard parsed is [String: Any] else {
            throw ZeebeError(
                code: .invalidVariables, message: "variables must be a JSON object, not \(type(of: parsed))")
        }
        self.json = trimmed
    }

    /// Encodes a value whose JSON form is an object (a struct, class or `[String: ...]`).
    /// - Throws: ``ZeebeError`` with code `INVALID_VARIABLES` when it does not encode to an object.
    public init(_ value: some Encodable) throws {
        let data: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            data = try encoder.encode(value)
        } catch {
            throw ZeebeError(code: .invalidVariables, message: "variables could not be encoded", cause: error)
        }
        try self.init(json: String(decoding: data, as: UTF8.self))
    }

    init(trustedJSON: String) {
        self.json = trustedJSON
    }

    /// Decodes the variables into `type`. Empty variables decode as `{}`.
    /// - Throws: ``ZeebeError`` with code `INVALID_VARIABLES` when they do not match the type.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        let text = json.isEmpty ? "{}" : json
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw ZeebeError(code: .invalidVariables, message: "variables do not decode as \(T.self)", cause: error)
        }
    }

    /// The JSON text.
    public var description: String { json.isEmpty ? "{}" : json }
}
