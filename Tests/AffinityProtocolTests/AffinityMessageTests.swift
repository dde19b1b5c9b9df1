import AffinityProtocol
import Testing

@Suite("AffinityMessage")
struct AffinityMessageTests {
    private func decode(_ text: String) throws(AffinityError) -> AffinityMessage {
        try AffinityMessage.decode(Array(text.utf8))
    }

    private func error(_ text: String) -> AffinityError? {
        do {
            _ = try decode(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func decodesEveryMessage() throws {
        let key = try #require(ProcessInstanceKey(2_251_799_813_685_249))
        #expect(
            try decode(#"{"type":"hello","role":"client","clientId":"fe-1"}"#)
                == .hello(role: .client, clientId: "fe-1"))
        #expect(try decode(#"{"type":"hello","role":"worker","clientId":"w"}"#) == .hello(role: .worker, clientId: "w"))
        #expect(
            try decode(#"{"type":"welcome","replica":"r1","protocol":1}"#)
                == .welcome(replica: "r1", protocolVersion: 1))
        #expect(try decode(#"{"type":"subscribe","key":"2251799813685249"}"#) == .subscribe(key: key))
        #expect(try decode(#"{"type":"subscribed","key":"2251799813685249"}"#) == .subscribed(key: key))
        #expect(try decode(#"{"type":"unsubscribe","key":"2251799813685249"}"#) == .unsubscribe(key: key))
        #expect(try decode(#"{"type":"unsubscribed","key":"2251799813685249"}"#) == .unsubscribed(key: key))
        #expect(try decode(#"{"type":"ack","id":"j1"}"#) == .ack(id: "j1"))
        #expect(try decode(#"{"type":"ack","id":"j1","confirm":true}"#) == .confirmedAck(id: "j1"))
        #expect(try decode(#"{"type":"ack","id":"j1","confirm":false}"#) == .ack(id: "j1"))
        #expect(try decode(#"{"type":"ack","id":"j1","confirm":"yes"}"#) == .ack(id: "j1"))
        #expect(try decode(#"{"type":"acknowledged","id":"j1"}"#) == .acknowledged(id: "j1"))
        #expect(
            AffinityMessage.confirmedAck(id: "j1").encoded() == Array(#"{"type":"ack","id":"j1","confirm":true}"#.utf8))
        #expect(try AffinityMessage.decodeHTTPAcknowledgement(Array(#"{"id":"j1"}"#.utf8)) == "j1")
        #expect(throws: AffinityError.self) {
            try AffinityMessage.decodeHTTPAcknowledgement(Array(#"{"type":"outcome","id":"j1"}"#.utf8))
        }
        #expect(try decode(#"{"type":"result","id":"j1","status":"parked"}"#) == .result(id: "j1", status: .parked))
        #expect(try decode(#"{"type":"drain"}"#) == .drain)
        #expect(
            try decode(#"{"type":"error","code":"forbidden","message":"no","ref":"7"}"#)
                == .error(code: .forbidden, message: "no", ref: "7"))
        let outcome = try decode(#"{"type":"outcome","id":"j1","key":"2251799813685249","variables":{"ok":true}}"#)
        #expect(outcome == .outcome(try Outcome(id: "j1", key: key, variables: Array(#"{"ok":true}"#.utf8))))
    }

    @Test func encodingRoundTrips() throws {
        let key = try #require(ProcessInstanceKey(42))
        let messages: [AffinityMessage] = [
            .hello(role: .client, clientId: "a\"b\\c\n"), .welcome(replica: "r", protocolVersion: 1),
            .subscribe(key: key),
            .subscribed(key: key), .unsubscribe(key: key), .unsubscribed(key: key), .ack(id: "é😀"),
            .confirmedAck(id: "j2"), .acknowledged(id: "j2"),
            .result(id: "x", status: .delivered), .drain, .error(code: .tooLarge, message: "big", ref: nil),
            .error(code: .badRequest, message: "m\u{1}", ref: "42"),
            .outcome(try Outcome(id: "o", key: key, variables: Array(#"{ "a" : [1, 2.5e3, "\u00e9"] }"#.utf8))),
        ]
        for message in messages {
            let encoded = message.encoded()
            _ = try JSONScanner.scanObject(encoded)
            #expect(try AffinityMessage.decode(encoded) == message)
        }
    }

    @Test func stringsAreEscapedBetweenTheirUnescapedRuns() {
        #expect(
            AffinityMessage.ack(id: "a\"b\\c\nd\re\tf\u{1F}g\u{0}é").encoded()
                == Array(#"{"type":"ack","id":"a\"b\\c\nd\re\tf\u001fg\u0000é"}"#.utf8))
        #expect(AffinityMessage.ack(id: "\"").encoded() == Array(#"{"type":"ack","id":"\""}"#.utf8))
    }

    @Test func outcomeFrameCopiesVariablesVerbatim() throws {
        let variables = #"{ "b" : 1 , "a" : { "z" : "\u00e9" } }"#
        let outcome = try Outcome(id: "j", key: #require(ProcessInstanceKey(9)), variables: Array(variables.utf8))
        #expect(
            String(decoding: outcome.frame, as: UTF8.self)
                == #"{"type":"outcome","id":"j","key":"9","variables":{ "b" : 1 , "a" : { "z" : "\u00e9" } }}"#)
    }

    @Test func unknownTypeIsUnknownType() {
        #expect(error(#"{"type":"dance"}"#)?.code == .unknownType)
    }

    @Test func missingOrWrongFieldsAreBadRequest() {
        let cases = [
            #"{}"#, #"{"type":1}"#, #"{"type":"hello","role":"admin","clientId":"x"}"#,
            #"{"type":"hello","role":"client"}"#,
            #"{"type":"hello","role":"client","clientId":""}"#, #"{"type":"subscribe"}"#,
            #"{"type":"subscribe","key":42}"#,
            #"{"type":"ack"}"#, #"{"type":"outcome","id":"1","key":"5"}"#,
            #"{"type":"outcome","id":"1","key":"5","variables":[]}"#,
            #"{"type":"outcome","key":"5","variables":{}}"#, #"{"type":"result","id":"1","status":"lost"}"#,
        ]
        for text in cases {
            #expect(error(text)?.code == .badRequest, "\(text)")
        }
    }

    @Test func identifiersAreLimited() {
        let long = String(repeating: "x", count: AffinityLimits.maximumIdentifierBytes + 1)
        #expect(error(#"{"type":"ack","id":"\#(long)"}"#)?.code == .badRequest)
        let max = String(repeating: "x", count: AffinityLimits.maximumIdentifierBytes)
        #expect((try? decode(#"{"type":"ack","id":"\#(max)"}"#)) == .ack(id: max))
    }

    @Test func errorsCarryTheRef() {
        #expect(error(#"{"type":"outcome","id":"j7","key":"5","variables":1}"#)?.ref == "j7")
        #expect(error(#"{"type":"subscribe","key":"007"}"#)?.ref == "007")
    }

    @Test func ignoresUnknownMembers() throws {
        #expect(try decode(#"{"type":"drain","future":{"x":[1]}}"#) == .drain)
    }
}
