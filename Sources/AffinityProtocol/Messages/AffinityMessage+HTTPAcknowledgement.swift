extension AffinityMessage {
    /// Parses the body of `POST /v1/outcomes/{key}/ack`, the HTTP form of `ack` for long-poll clients:
    /// `{"id":"<outcome id>"}`; a `"type":"ack"` member is allowed, other unknown members are ignored.
    /// Returns the outcome id.
    ///
    /// ```swift
    /// let id = try AffinityMessage.decodeHTTPAcknowledgement(Array(#"{"id":"2251799813685291"}"#.utf8))
    /// ```
    public static func decodeHTTPAcknowledgement(_ bytes: [UInt8]) throws(AffinityError) -> String {
        let object = try JSONScanner.scanObject(bytes)
        if let type = object["type"], type.stringValue != "ack" {
            throw AffinityError(code: .unknownType, message: "only an ack can be posted here")
        }
        return try identifier("id", in: object)
    }
}
