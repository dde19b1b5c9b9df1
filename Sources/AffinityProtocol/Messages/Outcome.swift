/// An outcome of a process instance: what a worker delivers and a subscribed client receives.
///
/// `variables` holds the raw bytes of a JSON object; the service never decodes it, it passes it on
/// byte for byte.
public struct Outcome: Sendable, Hashable {
    /// The outcome id, unique per outcome (the Zeebe job key); clients de-duplicate by it.
    public let id: String
    /// The process instance the outcome belongs to.
    public let key: ProcessInstanceKey
    /// The raw UTF-8 bytes of a JSON object.
    public let variables: [UInt8]

    /// Creates an outcome, validating the id (non-empty, at most ``AffinityLimits/maximumIdentifierBytes``)
    /// and that `variables` is one JSON object.
    public init(id: String, key: ProcessInstanceKey, variables: [UInt8]) throws(AffinityError) {
        try AffinityLimits.validateIdentifier(id, field: "id")
        _ = try JSONScanner.scanObject(variables)
        self.id = id
        self.key = key
        self.variables = variables
    }

    /// Creates an outcome whose parts were already validated (by the scanner).
    init(validatedID id: String, key: ProcessInstanceKey, variables: [UInt8]) {
        self.id = id
        self.key = key
        self.variables = variables
    }

    /// The `outcome` frame: `{"type":"outcome","id":...,"key":"...","variables":{...}}`, built by
    /// concatenation with `variables` copied verbatim.
    public var frame: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(variables.count + id.utf8.count + 64)
        output.append(contentsOf: #"{"type":"outcome","id":"#.utf8)
        JSONStringEncoding.appendQuoted(id, to: &output)
        output.append(contentsOf: #","key":""#.utf8)
        key.appendDecimal(to: &output)
        output.append(contentsOf: #"","variables":"#.utf8)
        output.append(contentsOf: variables)
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// The size of ``frame`` without building it (exact unless the id holds characters that JSON escapes):
    /// what the stores and the outbound budget count for this outcome.
    public var frameByteCount: Int {
        variables.count + id.utf8.count + key.decimalDigitCount + 48
    }

    /// Parses the body of `POST /v1/outcomes`: `{"id":...,"key":"...","variables":{...}}`; a
    /// `"type":"outcome"` member is allowed, other unknown members are ignored.
    public static func decodeDelivery(_ bytes: [UInt8]) throws(AffinityError) -> Outcome {
        let object = try JSONScanner.scanObject(bytes)
        if let type = object["type"], type.stringValue != "outcome" {
            throw AffinityError(code: .unknownType, message: "only outcomes can be posted here")
        }
        return try decodeMembers(of: object)
    }

    /// Reads `id`, `key` and `variables` from a scanned object.
    static func decodeMembers(of object: ScannedJSONObject) throws(AffinityError) -> Outcome {
        let id = try AffinityMessage.identifier("id", in: object)
        let key: ProcessInstanceKey
        switch AffinityMessage.processInstanceKey(in: object) {
        case .success(let value):
            key = value
        case .failure(var error):
            error.ref = id  // a worker correlates errors by outcome id
            throw error
        }
        guard let variables = object["variables"] else {
            throw AffinityError.badRequest("missing \"variables\"", ref: id)
        }
        guard variables.kind == .object else {
            throw AffinityError.badRequest("\"variables\" must be a JSON object", ref: id)
        }
        return Outcome(validatedID: id, key: key, variables: Array(object.rawBytes(of: variables)))
    }
}
