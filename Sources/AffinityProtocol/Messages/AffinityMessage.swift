/// One protocol v1 message (docs/PROTOCOL.md), in either direction.
///
/// ```swift
/// let message = try AffinityMessage.decode(Array(#"{"type":"subscribe","key":"42"}"#.utf8))
/// let frame = AffinityMessage.subscribed(key: ProcessInstanceKey(42)!).encoded()
/// ```
public enum AffinityMessage: Sendable, Hashable {
    /// `{"type":"hello","role":"client"|"worker","clientId":"<id>"}`: the first message of a connection.
    case hello(role: PeerRole, clientId: String)
    /// `{"type":"welcome","replica":"<replica id>","protocol":1}`: the answer to `hello`.
    case welcome(replica: String, protocolVersion: Int)
    /// `{"type":"subscribe","key":"<K>"}` from a client.
    case subscribe(key: ProcessInstanceKey)
    /// `{"type":"subscribed","key":"<K>"}`: sent before any parked outcomes for the key.
    case subscribed(key: ProcessInstanceKey)
    /// `{"type":"unsubscribe","key":"<K>"}` from a client.
    case unsubscribe(key: ProcessInstanceKey)
    /// `{"type":"unsubscribed","key":"<K>"}`.
    case unsubscribed(key: ProcessInstanceKey)
    /// `{"type":"outcome","id":...,"key":...,"variables":{...}}`: worker to server, server to client.
    case outcome(Outcome)
    /// `{"type":"ack","id":"<id>"}`: a client received an outcome.
    case ack(id: String)
    /// `{"type":"ack","id":"<id>","confirm":true}`: an ack the server confirms with ``acknowledged(id:)`` once it
    /// took effect (the parked copy removed, the id remembered): a client that waits for it before it answers
    /// its own caller knows the outcome cannot reach the next subscriber of the key.
    case confirmedAck(id: String)
    /// `{"type":"acknowledged","id":"<id>"}`: the answer to a ``confirmedAck(id:)``.
    case acknowledged(id: String)
    /// `{"type":"result","id":"<id>","status":"delivered"|"parked"}`: the answer to a worker's outcome.
    case result(id: String, status: DeliveryStatus)
    /// `{"type":"drain"}`: the replica is shutting down; reconnect elsewhere.
    case drain
    /// `{"type":"error","code":...,"message":...,"ref":...}`.
    case error(code: AffinityError.Code, message: String, ref: String?)

    /// The `type` member of this message.
    public var type: String {
        switch self {
        case .hello: "hello"
        case .welcome: "welcome"
        case .subscribe: "subscribe"
        case .subscribed: "subscribed"
        case .unsubscribe: "unsubscribe"
        case .unsubscribed: "unsubscribed"
        case .outcome: "outcome"
        case .ack, .confirmedAck: "ack"
        case .acknowledged: "acknowledged"
        case .result: "result"
        case .drain: "drain"
        case .error: "error"
        }
    }

    /// The error frame for `error`.
    public static func error(_ error: AffinityError) -> AffinityMessage {
        .error(code: error.code, message: error.message, ref: error.ref)
    }

    /// Decodes one text frame. Unknown members are ignored; an unknown `type` throws `unknown_type`;
    /// anything malformed throws `bad_request` with `ref` set to the id or key when it could be read.
    public static func decode(_ bytes: [UInt8]) throws(AffinityError) -> AffinityMessage {
        let object = try JSONScanner.scanObject(bytes)
        guard let typeValue = object["type"] else { throw AffinityError.badRequest("missing \"type\"") }
        guard let type = typeValue.stringValue else { throw AffinityError.badRequest("\"type\" must be a string") }
        do {
            return try decode(type: type, object: object)
        } catch {
            // read only for an error: a message that decodes does not pay for a second copy of its id
            throw error.withRef(object["id"]?.stringValue ?? object["key"]?.stringValue)
        }
    }

    private static func decode(type: String, object: ScannedJSONObject) throws(AffinityError) -> AffinityMessage {
        switch type {
        case "hello":
            let roleText = try string("role", in: object)
            guard let role = PeerRole(rawValue: roleText) else {
                throw AffinityError.badRequest("\"role\" must be \"client\" or \"worker\"")
            }
            return .hello(role: role, clientId: try identifier("clientId", in: object))
        case "welcome":
            guard let version = object["protocol"], version.kind == .number,
                let number = Int(String(decoding: object.rawBytes(of: version), as: UTF8.self))
            else { throw AffinityError.badRequest("\"protocol\" must be an integer") }
            return .welcome(replica: try string("replica", in: object), protocolVersion: number)
        case "subscribe":
            return .subscribe(key: try processInstanceKey(in: object).get())
        case "subscribed":
            return .subscribed(key: try processInstanceKey(in: object).get())
        case "unsubscribe":
            return .unsubscribe(key: try processInstanceKey(in: object).get())
        case "unsubscribed":
            return .unsubscribed(key: try processInstanceKey(in: object).get())
        case "outcome":
            return .outcome(try Outcome.decodeMembers(of: object))
        case "ack":
            let id = try identifier("id", in: object)
            if let confirm = object["confirm"], confirm.kind == .bool,
                object.rawBytes(of: confirm).first == UInt8(ascii: "t")
            {
                return .confirmedAck(id: id)
            }
            return .ack(id: id)
        case "acknowledged":
            return .acknowledged(id: try identifier("id", in: object))
        case "result":
            let id = try identifier("id", in: object)
            guard let status = DeliveryStatus(rawValue: try string("status", in: object)) else {
                throw AffinityError.badRequest("\"status\" must be \"delivered\" or \"parked\"")
            }
            return .result(id: id, status: status)
        case "drain":
            return .drain
        case "error":
            let code = AffinityError.Code(rawValue: try string("code", in: object))
            let message = object["message"]?.stringValue ?? ""
            return .error(code: code, message: message, ref: object["ref"]?.stringValue)
        default:
            throw AffinityError(code: .unknownType, message: "unknown message type \"\(type)\"")
        }
    }

    /// The JSON text of this message, built by concatenation (outcome variables copied verbatim).
    public func encoded() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(96)
        output.append(contentsOf: #"{"type":""#.utf8)
        output.append(contentsOf: type.utf8)
        output.append(UInt8(ascii: "\""))
        func member(_ name: StaticString, _ value: String) {
            output.append(UInt8(ascii: ","))
            JSONStringEncoding.appendName(name, to: &output)
            JSONStringEncoding.appendQuoted(value, to: &output)
        }
        switch self {
        case .hello(let role, let clientId):
            member("role", role.rawValue)
            member("clientId", clientId)
        case .welcome(let replica, let version):
            member("replica", replica)
            output.append(contentsOf: #","protocol":"#.utf8)
            output.append(contentsOf: String(version).utf8)
        case .subscribe(let key), .subscribed(let key), .unsubscribe(let key), .unsubscribed(let key):
            output.append(contentsOf: #","key":""#.utf8)
            key.appendDecimal(to: &output)
            output.append(UInt8(ascii: "\""))
        case .outcome(let outcome):
            return outcome.frame
        case .ack(let id), .acknowledged(let id):
            member("id", id)
        case .confirmedAck(let id):
            member("id", id)
            output.append(contentsOf: #","confirm":true"#.utf8)
        case .result(let id, let status):
            member("id", id)
            member("status", status.rawValue)
        case .drain:
            break
        case .error(let code, let message, let ref):
            member("code", code.rawValue)
            member("message", message)
            if let ref { member("ref", ref) }
        }
        output.append(UInt8(ascii: "}"))
        return output
    }

    // MARK: - Member readers shared with Outcome

    static func string(_ name: String, in object: ScannedJSONObject) throws(AffinityError) -> String {
        guard let value = object[name] else { throw AffinityError.badRequest("missing \"\(name)\"") }
        guard let text = value.stringValue else { throw AffinityError.badRequest("\"\(name)\" must be a string") }
        return text
    }

    static func identifier(_ name: String, in object: ScannedJSONObject) throws(AffinityError) -> String {
        let text = try string(name, in: object)
        try AffinityLimits.validateIdentifier(text, field: name)
        return text
    }

    static func processInstanceKey(in object: ScannedJSONObject) -> Result<ProcessInstanceKey, AffinityError> {
        guard let value = object["key"] else { return .failure(.badRequest("missing \"key\"")) }
        guard let text = value.stringValue else {
            return .failure(.badRequest("\"key\" must be a string holding a decimal process instance key"))
        }
        guard let key = ProcessInstanceKey(text) else {
            return .failure(
                .badRequest("\"key\" must be a decimal process instance key in 1...\(Int64.max)", ref: text)
            )
        }
        return .success(key)
    }
}
